"""Scale run of the sharded directory: many DHT nodes in ONE process, many ads of one type.

1. ``--nodes`` nodes join over real UDP on 127.0.0.1 (one process, one event loop).
2. ``--ads`` advertisements of type "spend" (one key each) are *preloaded*: each is put
   into the validating store of the k nodes closest to its shard topic (global view),
   each as if stored by a publisher of its own address. Publishing 100,000 ads through
   walks and store RPCs would take this shared 2-core machine hours; the store path
   (quotas, bounds, eviction) is the same, the walk is exercised by step 3.
3. ``--fresh`` signers publish through the network (walk + store RPCs) and, ``--age``
   seconds later, ``--finders`` searchers on random nodes each look one of them up
   (``Discovery.find_signer``): the share found.
4. ``--lookups`` searchers on random nodes run ``find_signers("spend", max_results=50)``
   one after another: latency (wall clock) and how many returned 50.
5. The largest store of any node (records, bytes).
6. ``--full-sweep``: one searcher reads every shard (``find_signers`` without max_results)
   and counts distinct signers (the "all found" check for a small network).

Usage: .venv/bin/python bench/bench_dht_scale.py [--nodes 1000] [--ads 100000] [--age 60]
       .venv/bin/python bench/bench_dht_scale.py --nodes 16 --ads 10000 --full-sweep
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

from kademlia.node import Node  # noqa: E402

from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.dht import DhtConfig, DhtNode, Discovery  # noqa: E402
from musig2_plugin.records import Advertisement, type_topics  # noqa: E402


def _ad(rng: random.Random, i: int, ttl: float = 3600) -> Advertisement:
    return Advertisement.create(rng.randbytes(32), tx_types=("spend",), min_amount_sat=1000,
                                max_amount_sat=10**8, host="10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                                port=40000 + i % 20000, nickname=f"s{i}", fee_per_signature_sat=i % 500,
                                ttl=ttl, chain=REGTEST)


async def run(args) -> dict:
    config = DhtConfig(rpc_timeout=2.0, rate_limit_by="address")
    rng = random.Random(7)
    nodes: list[DhtNode] = []
    t0 = time.perf_counter()
    first = DhtNode(config, chain=REGTEST)
    await first.start()
    nodes.append(first)
    while len(nodes) < args.nodes:  # join in small waves
        wave = [DhtNode(config, chain=REGTEST) for _ in range(min(10, args.nodes - len(nodes)))]
        await asyncio.gather(*(n.start(bootstrap=[nodes[0].address, rng.choice(nodes).address])
                               for n in wave))
        nodes.extend(wave)
    join_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    topics = type_topics("spend", REGTEST)
    closest = {t: sorted(nodes, key=lambda n: n.contact.distance_to(Node(t)))[: config.ksize]
               for t in topics}
    refused = 0
    for i in range(args.ads):
        ad = _ad(rng, i)
        topic = ad.topics()[0]
        source = (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1)
        for node in closest[topic]:
            refused += node.records.put(topic, ad, source=source) != "stored"
        if i % 5000 == 0:
            await asyncio.sleep(0)
    preload_s = time.perf_counter() - t0

    fresh = [_ad(rng, 10**6 + i) for i in range(args.fresh)]
    stored = await asyncio.gather(*(rng.choice(nodes).publish(ad) for ad in fresh))
    await asyncio.sleep(args.age)
    found = 0
    for _ in range(args.finders):
        ad = rng.choice(fresh)
        got = await Discovery(rng.choice(nodes)).find_signer(ad.owner, "spend")
        found += got == ad

    latencies, full = [], 0
    for _ in range(args.lookups):
        searcher = Discovery(rng.choice(nodes))
        t = time.perf_counter()
        res = await searcher.find_signers("spend", max_results=50)
        latencies.append((time.perf_counter() - t) * 1000)
        full += len(res) == 50
    latencies.sort()

    out = {"processes": 1, "nodes": args.nodes, "ads_preloaded": args.ads,
           "preload_refused": refused, "join_s": round(join_s, 1), "preload_s": round(preload_s, 1),
           "fresh_published": args.fresh, "fresh_min_stores": min(int(s) for s in stored),
           "fresh_age_s": args.age, "fresh_found_share": round(found / max(1, args.finders), 4),
           "find50_median_ms": round(statistics.median(latencies), 1),
           "find50_p95_ms": round(latencies[max(0, int(0.95 * len(latencies)) - 1)], 1),
           "find50_returned_50": f"{full}/{args.lookups}",
           "max_records_per_node": max(len(n.records) for n in nodes),
           "max_bytes_per_node": max(n.records.bytes_held for n in nodes)}
    if args.full_sweep:
        t = time.perf_counter()
        everyone = await Discovery(nodes[-1]).find_signers("spend")
        out["full_sweep_found"] = len(everyone)
        out["full_sweep_s"] = round(time.perf_counter() - t, 1)
    for node in nodes:
        await node.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--ads", type=int, default=100_000)
    p.add_argument("--fresh", type=int, default=20)
    p.add_argument("--age", type=float, default=60.0)
    p.add_argument("--finders", type=int, default=200)
    p.add_argument("--lookups", type=int, default=60)
    p.add_argument("--full-sweep", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
