#!/usr/bin/env python3
"""What the connection handshake (m2.hello) costs: first message to a fresh peer with and
without it, and the listener's cost per handshake.

    python bench/bench_handshake.py [--peers 40] [--rounds 3]

One process, one event loop, real aiorpcx servers on 127.0.0.1. For each of ``--peers``
fresh listeners (a Transport each) the dialer opens a new connection and pushes one small
request: once naming the key it means to reach (hello first, then the push), once without
(the push alone; what the code did before). Reported: median and p90 of the first-delivery
time in ms, per mode, and the listener's time to answer one hello (one BIP-340 signature).
Also the steady state (second message on the open connection), which the handshake does not
touch. Figures go to docs/network.md.
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

from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.transport import PeerRefused, Transport  # noqa: E402
from musig2_plugin.transport.hello import answer_hello, new_nonce  # noqa: E402


async def _noop(*_a) -> None:
    return None


def _transport(cfg: Musig2Config) -> Transport:
    return Transport(os.urandom(32), cfg, chain=REGTEST, membership=lambda sid: None,
                     on_envelope=_noop, on_request=_noop)


async def first_delivery(peers: int, handshake: bool, cfg: Musig2Config) -> tuple[list, list]:
    servers = [_transport(cfg) for _ in range(peers)]
    for s in servers:
        await s.start("127.0.0.1", 0)
    client = _transport(cfg)
    first, second = [], []
    try:
        for s in servers:
            for bucket in (first, second):
                t0 = time.perf_counter()
                try:
                    await client.push_request(s.endpoint, b"\x02junk",
                                              to=s.pubkey if handshake else None)
                except PeerRefused:
                    pass                 # the listener refuses junk: the round trip is what counts
                bucket.append((time.perf_counter() - t0) * 1000)
    finally:
        await client.stop()
        for s in servers:
            await s.stop()
    return first, second


def hello_cost(n: int = 500) -> float:
    sk = os.urandom(32)
    nonces = [new_nonce().hex() for _ in range(n)]
    t0 = time.perf_counter()
    for nonce in nonces:
        answer_hello(sk, REGTEST.id, nonce)
    return (time.perf_counter() - t0) / n * 1e6


def p90(values: list) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cfg = Musig2Config()
    out = {"peers": args.peers, "rounds": args.rounds}
    for mode in ("without", "with"):
        firsts, seconds = [], []
        for _ in range(args.rounds):
            f, s = await first_delivery(args.peers, mode == "with", cfg)
            firsts += f
            seconds += s
        out[f"first_ms_{mode}_hello"] = {"median": round(statistics.median(firsts), 2),
                                         "p90": round(p90(firsts), 2)}
        out[f"next_ms_{mode}_hello"] = {"median": round(statistics.median(seconds), 2)}
    out["hello_answer_us"] = round(hello_cost(), 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
