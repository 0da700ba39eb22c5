#!/usr/bin/env python3
"""End-to-end signing time on loopback: announce -> final signature at every participant.

    python bench/bench_session.py [--sizes 2,3,10,50] [--runs 7] [--out docs/sessions-bench.json]

n real Musig2Nodes (one aiorpcx server each, 127.0.0.1) run in one process and one
event loop; every participant auto-approves and joins as soon as the request is
pushed to it (``signing-request:received``), then both rounds run automatically.
The clock starts just before ``announce_signing_request`` and stops when the last
participant holds the verified final signature. Median of ``--runs`` runs (fresh
keys and nodes for each run).

Note: the records layer caps a signing request at constants.MAX_REQUEST_KEYS keys
(16 today, chosen so a worst-case record fits one DHT datagram). The session layer
supports 50; for n above the cap this benchmark lifts the constant for its own
process only, which is what a request to that many keys needs (see docs/sessions.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from musig2_plugin.foundation import constants as C  # noqa: E402
from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.crypto import schnorr_verify  # noqa: E402


async def one_run(n: int, config: Musig2Config) -> float:
    nodes = [Musig2Node(os.urandom(32), config=config, chain=REGTEST) for _ in range(n)]
    for node in nodes:
        await node.start("127.0.0.1", 0, dht=False)
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b.pubkey, b.endpoint)
    done: list[asyncio.Future] = []
    loop = asyncio.get_running_loop()
    for node in nodes:
        fut = loop.create_future()
        done.append(fut)

        def on_final(_fut=fut, **kw):
            if not _fut.done():
                _fut.set_result(kw["signature"])

        def on_received(_node=node, **kw):
            asyncio.ensure_future(_node.join_signing_request(kw["request"]))

        node.on("signature:finalized", on_final)
        node.on("signing-request:received", on_received)
    keys = [x.pubkey for x in nodes]
    msg = os.urandom(32)
    try:
        t0 = time.perf_counter()
        record = await nodes[0].announce_signing_request(keys, [msg])
        await nodes[0].join_signing_request(record)
        sigs = await asyncio.wait_for(asyncio.gather(*done), 60)
        elapsed = time.perf_counter() - t0
    finally:
        await asyncio.gather(*(x.stop() for x in nodes))
    q = Musig2Node.aggregate_key(keys).xonly()
    if len(set(sigs)) != 1 or not schnorr_verify(q, msg, sigs[0]):
        raise SystemExit(f"n={n}: signatures differ or do not verify")
    return elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2,3,10,50")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if max(sizes) > C.MAX_REQUEST_KEYS:
        C.MAX_REQUEST_KEYS = max(sizes)        # see the module docstring
    config = Musig2Config()
    results = {}
    for n in sizes:
        runs = args.runs if n <= 10 else max(3, args.runs // 2)
        await one_run(n, config)               # warm-up (imports, first connections)
        times = [await one_run(n, config) for _ in range(runs)]
        med = statistics.median(times) * 1000
        results[n] = {"median_ms": round(med, 1), "min_ms": round(min(times) * 1000, 1),
                      "max_ms": round(max(times) * 1000, 1), "runs": runs}
        print(f"n={n:>3}: median {med:8.1f} ms  (min {min(times)*1000:.1f}, "
              f"max {max(times)*1000:.1f}, {runs} runs)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    asyncio.run(main())
