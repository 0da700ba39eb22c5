#!/usr/bin/env python3
"""The private Tor network's start-up, and 3-of-3 signing over Tor vs. clearnet (loopback).

    python bench/bench_tor.py [--networks 2] [--runs 5] [--n 3] [--out docs/tor-bench.json]

1. Start-up: ``--networks`` times, a fresh private network (3 authorities, 2 relays, 2 exits;
   tests/harness/tornet.py) from nothing to "consensus lists every relay and a client has
   bootstrapped"; then the time from ADD_ONION to the service answering through another client.
2. Signing: n real Musig2Nodes in one process, each Tor-only (outbound through its own Tor
   client's SOCKS port, inbound only through its own ephemeral onion service), against n nodes
   on plain loopback. The clock runs from ``announce_signing_request`` (pushed to every
   participant, each auto-approves and joins) to the verified final signature at every
   participant. The first request on fresh nodes ("cold": circuits and connections are built)
   is reported apart from the median of the following ``--runs`` ("warm": connections reused).
Everything is on 127.0.0.1; the network is torn down at the end.
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

from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.crypto import schnorr_verify  # noqa: E402
from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.tor import ControlSettings, OnionService, ProxySpec, socks_connector  # noqa: E402
from tests.harness.tornet import LOOPBACK, PrivateTorNetwork, wait_onion_reachable  # noqa: E402

CFG = Musig2Config().with_(round_timeout=30.0, coordinator_grace=10.0, connect_timeout=60.0,
                           request_timeout=60.0)


async def sign_once(nodes: list[Musig2Node]) -> float:
    loop = asyncio.get_running_loop()
    done, subs = [], []
    for node in nodes:
        fut = loop.create_future()
        done.append(fut)

        def on_final(_fut=fut, **kw):
            if not _fut.done():
                _fut.set_result(kw["signature"])

        def on_received(_node=node, **kw):
            asyncio.ensure_future(_node.join_signing_request(kw["request"]))

        subs.append(node.on("signature:finalized", on_final))
        subs.append(node.on("signing-request:received", on_received))
    keys = [x.pubkey for x in nodes]
    msg = os.urandom(32)
    try:
        t0 = time.perf_counter()
        record = await nodes[0].announce_signing_request(keys, [msg])
        await nodes[0].join_signing_request(record)
        sigs = await asyncio.wait_for(asyncio.gather(*done), 180)
        elapsed = time.perf_counter() - t0
    finally:
        for sub in subs:
            sub.cancel()
    if len(set(sigs)) != 1 or not schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0]):
        raise SystemExit("signatures differ or do not verify")
    return elapsed


async def series(nodes: list[Musig2Node], runs: int) -> dict:
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b.pubkey, b.public_endpoint or b.endpoint)
    cold = await sign_once(nodes)
    warm = [await sign_once(nodes) for _ in range(runs)]
    return {"cold_ms": round(cold * 1000, 1), "warm_median_ms": round(statistics.median(warm) * 1000, 1),
            "warm_min_ms": round(min(warm) * 1000, 1), "warm_max_ms": round(max(warm) * 1000, 1),
            "runs": runs}


async def signing(net: PrivateTorNetwork, n: int, runs: int) -> dict:
    clear = [Musig2Node(os.urandom(32), chain=REGTEST, config=CFG) for _ in range(n)]
    for node in clear:
        await node.start(LOOPBACK, 0, dht=False)
    try:
        clearnet = await series(clear, runs)
    finally:
        await asyncio.gather(*(x.stop() for x in clear))
    clients = [await asyncio.to_thread(net.add_client, f"bench{i}", control="cookie") for i in range(n)]
    nodes, services, reach = [], [], []
    try:
        for client in clients:
            node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG,
                              connector=socks_connector(ProxySpec(LOOPBACK, client.socks_port)))
            await node.start(LOOPBACK, 0, dht=False)
            t0 = time.perf_counter()
            service = await OnionService.create(ControlSettings(LOOPBACK, client.control_port),
                                                node.endpoint)
            node.set_public_endpoint(service.endpoint)
            await asyncio.to_thread(wait_onion_reachable, clients[0].socks_port, *service.endpoint)
            reach.append(time.perf_counter() - t0)
            nodes.append(node)
            services.append(service)
        tor = await series(nodes, runs)
    finally:
        for service in services:
            await service.close()
        await asyncio.gather(*(x.stop() for x in nodes))
        for client in clients:
            net.stop_node(client)
    return {"n": n, "clearnet": clearnet, "tor_onion": tor,
            "onion_reachable_s": [round(x, 1) for x in reach]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    startups = []
    for i in range(args.networks):
        net = PrivateTorNetwork().start()
        startups.append(net.startup_seconds)
        print(f"network {i + 1}: up in {net.startup_seconds:.1f} s", flush=True)
        if i < args.networks - 1:
            net.stop()
    try:
        result = asyncio.run(signing(net, args.n, args.runs))
    finally:
        net.stop()
    result["network_startup_s"] = [round(x, 1) for x in startups]
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"python": sys.version.split()[0], "cpus": os.cpu_count(), **result}, f, indent=2)


if __name__ == "__main__":
    main()
