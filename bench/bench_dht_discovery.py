"""Discovery latency over a 100-node DHT on 127.0.0.1 (real UDP, one process).

20 signers advertise under "spend"; then searchers on random nodes run
``Discovery.find_signers("spend")`` one after another and we time each call
(wall clock, includes the iterative walk, paging, signature checks and merge).
All 100 nodes share this process's single event loop and one CPU, so every
reply is also produced by this loop: a pessimistic setting for latency.

Then 30% of the nodes stop (``--churn``) and lookups are timed again: "first"
(searchers still hold dead contacts) and "later" (after they learnt who is gone).

Usage: .venv/bin/python bench/bench_dht_discovery.py [--nodes 100] [--lookups 60] [--churn 0.3]
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


def _summary(latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    return {"median_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[max(0, int(0.95 * len(latencies)) - 1)], 1),
            "max_ms": round(latencies[-1], 1)}


async def _timed_lookups(nodes, rng, n_lookups: int, want: set,
                         frac: float = 1.0) -> tuple[list[float], int]:
    latencies, complete = [], 0
    for _ in range(n_lookups):
        searcher = Discovery(rng.choice(nodes))
        t = time.perf_counter()
        found = await searcher.find_signers("spend")
        latencies.append((time.perf_counter() - t) * 1000)
        complete += len({a.owner for a in found} & want) >= frac * len(want)
    return latencies, complete


async def run(n_nodes: int, n_lookups: int, n_signers: int, churn: float) -> dict:
    config = DhtConfig(rpc_timeout=2.0, rate_limit_by="address")
    rng = random.Random(42)
    nodes: list[DhtNode] = []
    t0 = time.perf_counter()
    for i in range(n_nodes):
        node = DhtNode(config, chain=REGTEST)
        boot = [] if not nodes else [nodes[0].address, rng.choice(nodes).address]
        await node.start(bootstrap=boot)
        nodes.append(node)
    started = time.perf_counter() - t0
    try:
        ads = [Advertisement.create(os.urandom(32), tx_types="spend", min_amount_sat=0,
                                    max_amount_sat=10**8, host="127.0.0.1", port=20_000 + i,
                                    reputation=i % 100, chain=REGTEST) for i in range(n_signers)]
        stored = []
        for i, ad in enumerate(ads):
            stored.append(await nodes[rng.randrange(n_nodes)].publish(ad))
        await asyncio.sleep(0.5)
        want = {ad.owner for ad in ads}
        latencies, complete = await _timed_lookups(nodes, rng, n_lookups, want)
        result = {
            "bench": "dht_discovery", "nodes": n_nodes, "signers": n_signers, "lookups": n_lookups,
            "startup_s": round(started, 2), "copies_per_ad_min": min(stored), **_summary(latencies),
            "all_20_found": f"{complete}/{n_lookups}",
        }
        if churn:
            # signers' ads stay published (their owners are elsewhere); 30% of nodes vanish
            victims = rng.sample(nodes, int(churn * n_nodes))
            for node in victims:
                await node.stop()
            alive = [n for n in nodes if n not in victims]
            first, ok1 = await _timed_lookups(alive, rng, min(n_lookups, len(alive)), want, 0.95)
            later, ok2 = await _timed_lookups(alive, rng, n_lookups, want, 0.95)
            result["after_churn"] = {
                "stopped": len(victims), "rpc_timeout_s": config.rpc_timeout,
                "first": {**_summary(first), ">=95%_found": f"{ok1}/{len(first)}"},
                "later": {**_summary(later), ">=95%_found": f"{ok2}/{len(later)}"},
            }
            nodes = alive
        return result
    finally:
        for node in nodes:
            await node.stop()


def main() -> None:
    logging.disable(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--lookups", type=int, default=60)
    ap.add_argument("--signers", type=int, default=20)
    ap.add_argument("--churn", type=float, default=0.3, help="fraction of nodes stopped afterwards")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.lookups, args.signers, args.churn))))


if __name__ == "__main__":
    main()
