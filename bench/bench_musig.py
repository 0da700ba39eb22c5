"""Benchmark: a full n-of-n MuSig2 session in one process, and one signer's share.

Run:  .venv/bin/python bench/bench_musig.py [--repeats R] [--sizes 2,3,10,100]

"Full session" = key sort, key aggregation + taproot tweak, n nonce_gen, nonce
aggregation, one session (nonce_process), n partial signatures (each checked
by its signer, as BIP-327 recommends), aggregation with the final BIP-340
check.  In one process all signers share the session state, which is what
each of them would compute identically.  "Own views" additionally lets every
signer open its own session (an extra nonce_process each), as separate
machines do.  "Per signer" = one participant's work: nonce_gen, open the
session, partial_sign.  Medians of wall-clock and of process CPU time (the
2 CPUs are shared with other jobs, so CPU time is the steadier figure).
Figures go to docs/crypto.md; this is a benchmark, not a timed test.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musig2_plugin.crypto import (KeyAggContext, SigningSession, key_sort,  # noqa: E402
                                  nonce_agg, nonce_gen, plain_pubkey, schnorr_verify)


def full_session(by_pk: dict[bytes, bytes], msg: bytes, own_views: bool = False) -> None:
    pks = key_sort(list(by_pk))
    keyagg = KeyAggContext.from_pubkeys(pks).with_taproot_tweak()
    ordered = [by_pk[pk] for pk in pks]
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg) for pk, sk in zip(pks, ordered)]
    coordinator = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    psigs = []
    for (secnonce, _), sk in zip(nonces, ordered):
        view = SigningSession(keyagg, coordinator.aggnonce, msg) if own_views else coordinator
        psigs.append(view.partial_sign(secnonce, sk))
    sig = coordinator.aggregate(psigs)
    assert schnorr_verify(keyagg.xonly(), msg, sig)


def per_signer(keyagg: KeyAggContext, pk: bytes, sk: bytes, others: list[bytes],
               msg: bytes) -> tuple[float, float]:
    """One signer's own work; the coordinator's nonce_agg in between is not counted."""
    w0, c0 = time.perf_counter(), time.process_time()
    secnonce, pubnonce = nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg)
    w1, c1 = time.perf_counter(), time.process_time()
    aggnonce = nonce_agg(others + [pubnonce])
    w2, c2 = time.perf_counter(), time.process_time()
    SigningSession(keyagg, aggnonce, msg).partial_sign(secnonce, sk)
    w3, c3 = time.perf_counter(), time.process_time()
    return (w1 - w0) + (w3 - w2), (c1 - c0) + (c3 - c2)


def medians(fn, repeats: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def breakdown(n: int, repeats: int) -> None:
    """CPU time per stage of one in-process session (where does the time go?)."""
    by_pk = {plain_pubkey(sk): sk for sk in (os.urandom(32) for _ in range(n))}
    msg = os.urandom(32)
    stages: dict[str, list[float]] = {}

    def lap(name: str, start: float) -> float:
        now = time.process_time()
        stages.setdefault(name, []).append((now - start) * 1000)
        return now

    for _ in range(repeats):
        t = time.process_time()
        pks = key_sort(list(by_pk))
        t = lap("key_sort", t)
        keyagg = KeyAggContext.from_pubkeys(pks).with_taproot_tweak()
        t = lap("key aggregation + taproot tweak", t)
        ordered = [by_pk[pk] for pk in pks]
        nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg) for pk, sk in zip(pks, ordered)]
        t = lap(f"{n} x nonce_gen", t)
        session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
        t = lap("nonce_agg + session", t)
        psigs = [session.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
        t = lap(f"{n} x partial_sign (incl. self-check)", t)
        session.aggregate(psigs)
        t = lap("aggregate + final verify", t)
        session.find_invalid(psigs)
        lap(f"(blame path only: {n} x partial_sig_verify)", t)
    for name, values in stages.items():
        print(f"  {name:<42} {statistics.median(values):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=0, help="0 = automatic per size")
    parser.add_argument("--sizes", default="2,3,10,100")
    parser.add_argument("--breakdown", type=int, default=0, metavar="N",
                        help="print a per-stage CPU-time breakdown for n=N and exit")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.breakdown, args.repeats or 21)
        return
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs (shared); times in ms, medians (wall / cpu)")
    print(f"{'n':>4} | {'full session':>15} | {'own views':>15} | {'per signer':>13} | {'repeats':>7}")
    for n in (int(x) for x in args.sizes.split(",")):
        repeats = args.repeats or max(21, 1500 // n)
        by_pk = {plain_pubkey(sk): sk for sk in (os.urandom(32) for _ in range(n))}
        msg = os.urandom(32)
        full_session(by_pk, msg)  # warm-up
        full = medians(lambda: full_session(by_pk, msg), repeats)
        views = medians(lambda: full_session(by_pk, msg, own_views=True), repeats)
        pks = key_sort(list(by_pk))
        keyagg = KeyAggContext.from_pubkeys(pks).with_taproot_tweak()
        others = [nonce_gen(pubkey=pk)[1] for pk in pks[1:]]
        samples = [per_signer(keyagg, pks[0], by_pk[pks[0]], others, msg) for _ in range(repeats)]
        one = (statistics.median(s[0] for s in samples) * 1000,
               statistics.median(s[1] for s in samples) * 1000)
        print(f"{n:>4} | {full[0]:>6.2f} / {full[1]:>6.2f} | {views[0]:>6.2f} / {views[1]:>6.2f} | "
              f"{one[0]:>5.3f} / {one[1]:>5.3f} | {repeats:>7}")


if __name__ == "__main__":
    main()
