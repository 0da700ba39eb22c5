"""Benchmark: the ctypes fallback backend (electrum_ecc's libsecp256k1) beside coincurve's.

Run:  .venv/bin/python bench/bench_backends.py [--repeats R] [--n 10]

Each backend runs in its own interpreter (the backend is chosen at import, through
MUSIG2_CRYPTO_BACKEND). The workload is a 10-of-10 session's crypto, every signer with its
own view, as separate machines do: key sort, key aggregation + taproot tweak, n nonce_gen,
nonce aggregation, n sessions, n self-checked partial signatures, aggregation and the
final BIP-340 check (bench_musig.full_session with own_views). Medians of process CPU time
and wall time; the target is fallback <= 1.5x coincurve. Figures go to docs/bundle.md;
this is a benchmark, not a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, statistics, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from musig2_plugin.crypto import plain_pubkey, secp
from bench_musig import full_session
n, repeats = {n}, {repeats}
sks = [(i + 1).to_bytes(32, "big") for i in range(n)]
by_pk = {{plain_pubkey(sk): sk for sk in sks}}
msg = bytes(range(32))
for _ in range(5):
    full_session(by_pk, msg, own_views=True)
wall, cpu = [], []
for _ in range(repeats):
    w0, c0 = time.perf_counter(), time.process_time()
    full_session(by_pk, msg, own_views=True)
    wall.append(time.perf_counter() - w0); cpu.append(time.process_time() - c0)
print(json.dumps({{"backend": secp.BACKEND, "wall_ms": statistics.median(wall) * 1e3,
                  "cpu_ms": statistics.median(cpu) * 1e3}}))
"""


def run(backend: str, n: int, repeats: int) -> dict:
    env = dict(os.environ, MUSIG2_CRYPTO_BACKEND=backend)
    code = _CHILD.format(root=str(ROOT), bench=str(ROOT / "bench"), n=n, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["backend"] != backend:
        raise SystemExit(f"asked for {backend}, the child ran {result['backend']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--n", type=int, default=10)
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; n = {args.n}, {args.repeats} repeats")
    results = {b: run(b, args.n, args.repeats) for b in ("coincurve", "electrum_ecc")}
    base = results["coincurve"]
    for name, r in results.items():
        print(f"{name:13s} cpu {r['cpu_ms']:7.3f} ms  wall {r['wall_ms']:7.3f} ms  "
              f"ratio (cpu) {r['cpu_ms'] / base['cpu_ms']:.2f}x")
    ratio = results["electrum_ecc"]["cpu_ms"] / base["cpu_ms"]
    print(f"fallback / coincurve = {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
