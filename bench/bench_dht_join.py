"""Join after churn: a node started after 100 nodes joined and left, timed to "advertised".

A core of ``--core`` long-lived nodes; ``--transient`` nodes join one after another through
them and then leave: a share ``--crash`` of them vanish without a word (socket closed), the
rest stop normally (telling their neighbours). Then ``--joins`` newcomers, one at a time,
``start()`` through one core node and ``Discovery.advertise`` one advertisement; we time
both (wall clock) and report the medians. Real UDP on 127.0.0.1, one process; RPC timeout
2 s (the default).

Usage: .venv/bin/python bench/bench_dht_join.py [--core 20] [--transient 100] [--crash 0.0] [--joins 9]
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.dht import DhtConfig, DhtNode, Discovery  # noqa: E402
from musig2_plugin.records import Advertisement  # noqa: E402


async def run(args) -> dict:
    config = DhtConfig(rpc_timeout=2.0, rate_limit_by="address")
    rng = random.Random(5)
    core: list[DhtNode] = []
    for i in range(args.core):
        node = DhtNode(config, chain=REGTEST)
        await node.start(bootstrap=[core[0].address, rng.choice(core).address] if core else [])
        core.append(node)
    transient = []
    for i in range(args.transient):
        node = DhtNode(config, chain=REGTEST)
        await node.start(bootstrap=[core[i % len(core)].address])
        transient.append(node)
    crashed = 0
    for node in transient:
        if rng.random() < args.crash:
            crashed += 1
            node.server.transport.close()
            node.server.protocol.cancel_outstanding()
            for task in list(node._tasks):
                task.cancel()
        else:
            await node.stop()
    starts, totals = [], []
    for i in range(args.joins):
        newcomer = DhtNode(config, chain=REGTEST)
        t0 = time.perf_counter()
        await newcomer.start(bootstrap=[core[i % len(core)].address])
        t1 = time.perf_counter()
        ad = Advertisement.create(rng.randbytes(32), tx_types=("spend",), min_amount_sat=0,
                                  max_amount_sat=10**8, host="127.0.0.1",
                                  port=50000 + i, ttl=600, chain=REGTEST)
        stored = await Discovery(newcomer).advertise(ad)
        totals.append(time.perf_counter() - t0)
        starts.append(t1 - t0)
        assert int(stored) > 0
        await newcomer.stop()
    for node in core:
        await node.stop()
    return {"processes": 1, "core": args.core, "transient_left": args.transient, "crashed": crashed,
            "joins": args.joins, "start_median_ms": round(1000 * statistics.median(starts)),
            "start_and_advertise_median_ms": round(1000 * statistics.median(totals)),
            "start_and_advertise_max_ms": round(1000 * max(totals))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--core", type=int, default=20)
    p.add_argument("--transient", type=int, default=100)
    p.add_argument("--crash", type=float, default=0.0)
    p.add_argument("--joins", type=int, default=9)
    args = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
