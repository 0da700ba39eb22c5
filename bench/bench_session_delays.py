#!/usr/bin/env python3
"""The critical path of a session counted in one-way network delays.

    python bench/bench_session_delays.py [--n 3] [--delay-ms 20] [--runs 5]

n real Musig2Nodes in one process; every node's server sits behind its own
``DelayProxy`` (tests/harness/delay_proxy.py), and the proxy is the endpoint its peers
know, so every message between two nodes takes ``delay`` one way (acknowledgements
too). Each participant joins as soon as the request reaches it (the creator on
``signing-request:created``, the others on ``signing-request:received``); the clock runs
from just before ``announce`` to the moment the last participant holds the verified
signature. Connections are warmed by one request first (a TCP connect through the proxy
costs an extra delay; strangers' first session pays it once).

The count is ``(median with delay - median without) / delay``, rounded: processing time
cancels out. Protocol order today: push, JOIN, READY, NONCE, NONCES, PSIG, FINAL.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.crypto import schnorr_verify  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from tests.harness.delay_proxy import DelayProxy  # noqa: E402


class Cluster:
    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay
        self.nodes: list[Musig2Node] = []
        self.proxies: list[DelayProxy] = []

    async def __aenter__(self) -> "Cluster":
        config = Musig2Config()
        for _ in range(self.n):
            node = Musig2Node(os.urandom(32), config=config, chain=REGTEST)
            await node.start("127.0.0.1", 0, dht=False)
            proxy = DelayProxy(node.endpoint, self.delay)
            public = await proxy.start()
            # The proxy is this node's public endpoint (as a port forward would be): what
            # it signs into its JOINs and what its peers dial.
            node.public_endpoint = node.transport.public_endpoint = public
            self.nodes.append(node)
            self.proxies.append(proxy)
        for a in self.nodes:
            for b in self.nodes:
                if a is not b:
                    a.add_peer(b.pubkey, b.public_endpoint)
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(x.stop() for x in self.nodes))
        for p in self.proxies:
            await p.stop()

    async def one_request(self) -> float:
        loop = asyncio.get_running_loop()
        finals = [loop.create_future() for _ in self.nodes]
        subs = []
        for node, fut in zip(self.nodes, finals):
            def on_final(_fut=fut, **kw):
                if not _fut.done():
                    _fut.set_result(kw["signature"])

            def on_request(_node=node, **kw):
                asyncio.ensure_future(_node.join_signing_request(kw["request"]))

            subs.append(node.on("signature:finalized", on_final))
            subs.append(node.on("signing-request:received", on_request))
        creator = self.nodes[0]
        subs.append(creator.on("signing-request:created", lambda **kw: asyncio.ensure_future(
            creator.join_signing_request(kw["request"]))))
        keys = [x.pubkey for x in self.nodes]
        msg = os.urandom(32)
        t0 = time.perf_counter()
        await creator.announce(keys, [msg])
        sigs = await asyncio.wait_for(asyncio.gather(*finals), 60)
        elapsed = time.perf_counter() - t0
        for s in subs:
            s.cancel()
        q = Musig2Node.aggregate_key(keys).xonly()
        if len(set(sigs)) != 1 or not schnorr_verify(q, msg, sigs[0]):
            raise SystemExit("signatures differ or do not verify")
        return elapsed


async def median_time(n: int, delay: float, runs: int) -> float:
    async with Cluster(n, delay) as cluster:
        await cluster.one_request()                      # warm the connections
        times = [await cluster.one_request() for _ in range(runs)]
    return statistics.median(times)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    delay = args.delay_ms / 1000
    base = await median_time(args.n, 0.0, args.runs)
    slow = await median_time(args.n, delay, args.runs)
    count = (slow - base) / delay
    print(f"n={args.n}: request -> last final signature {base * 1000:.1f} ms without delay, "
          f"{slow * 1000:.1f} ms at {args.delay_ms:.0f} ms per hop: critical path = "
          f"{count:.2f} one-way delays (~{round(count)})", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
