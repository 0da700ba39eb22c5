"""Start-up time of the regtest harness: bitcoind + ElectrumX + 3 Electrum daemons with wallets.

Each run starts everything from nothing (fresh data directories, fresh ports), the way one test
session does, and stops it again; the figures are wall-clock seconds per stage:
``node`` (bitcoind up, miner wallet, 101 blocks mined), ``server`` (ElectrumX indexed and
serving), ``daemons`` (3 Electrum daemons started concurrently, wallets created and loaded),
``synced`` (all 3 daemons at the node's height after one more block), and ``stop``.

With ``--fresh-setup`` it also times scripts/bootstrap.d/30-chain.sh into an empty temporary cache
folder (debootstrap of Debian 13 + bitcoin-knots from trixie-backports; needs root and the
Debian archive from the machine's apt configuration), then deletes that folder.

Usage: .venv/bin/python bench/bench_chain_startup.py [--runs 3] [--fresh-setup]
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.harness.chain import REPO, SETUP_SCRIPT, RegtestChain  # noqa: E402
from tests.harness.wallets import start_wallets, stop_wallets, wait_for_height  # noqa: E402


def one_run(daemons: int) -> dict[str, float]:
    import electrum  # noqa: F401  (imported once here, as a test session would, not inside the timing)

    t0 = time.monotonic()
    chain = RegtestChain()
    chain.start()
    t2 = time.monotonic()
    try:
        wallets = start_wallets(chain, daemons)
        t3 = time.monotonic()
        try:
            chain.mine(1)
            wait_for_height(wallets, chain.node.height())
            t4 = time.monotonic()
        finally:
            stop_wallets(wallets)
    finally:
        chain.stop()
    t5 = time.monotonic()
    return {
        "node": chain.startup_seconds["bitcoind"],
        "server": chain.startup_seconds["electrumx"],
        "daemons": t3 - t2,
        "synced": t4 - t3,
        "total_up": t3 - t0,
        "stop": t5 - t4,
    }


def fresh_setup() -> dict[str, object]:
    cache = tempfile.mkdtemp(prefix="musig2-fresh-cache-")
    env = {k: v for k, v in os.environ.items() if k != "BITCOIND"}
    env["MUSIG2_CACHE"] = cache
    try:
        t0 = time.monotonic()
        res = subprocess.run(["bash", str(REPO / SETUP_SCRIPT)], env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        size = subprocess.run(["du", "-sm", cache], capture_output=True, text=True).stdout.split()[0]
        return {"ok": res.returncode == 0, "seconds": round(seconds, 1), "megabytes": int(size),
                "output": (res.stdout + res.stderr).strip().splitlines()[-1:]}
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--fresh-setup", action="store_true")
    args = parser.parse_args()
    runs = [one_run(args.daemons) for _ in range(args.runs)]
    result: dict[str, object] = {
        "bench": "chain_startup",
        "daemons": args.daemons,
        "runs": args.runs,
        "median_s": {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]},
        "max_s": {k: round(max(r[k] for r in runs), 2) for k in runs[0]},
        "loadavg_1m_at_end": os.getloadavg()[0],
    }
    if args.fresh_setup:
        result["fresh_setup"] = fresh_setup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
