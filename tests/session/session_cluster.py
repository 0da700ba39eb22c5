"""Helpers for session tests: clusters of real Musig2Nodes on 127.0.0.1.

Each node has its own aiorpcx server and key; nodes learn each other's endpoints
with ``add_peer`` (what discovery would give them) so that these tests exercise
the session protocol without waiting on DHT lookups. The DHT path is covered
in tests/coordinator.
"""
from __future__ import annotations

import asyncio
import os
from collections import defaultdict

from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.foundation.events import SEED_EVENTS, EXTRA_EVENTS
from musig2_plugin.transport import Envelope, MsgType

FAST = Musig2Config().with_(round_timeout=1.5, coordinator_grace=1.0, heartbeat_interval=0.5,
                            rejoin_timeout=8.0, join_timeout=10.0)


class Recorder:
    """Every event of one node, in order, with its keyword arguments."""

    def __init__(self, node: Musig2Node) -> None:
        self.events: list[tuple[str, dict]] = []
        for name in SEED_EVENTS + EXTRA_EVENTS:
            node.on(name, lambda _n=name, **kw: self.events.append((_n, kw)))

    def of(self, name: str) -> list[dict]:
        return [kw for n, kw in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]


class WireLog:
    """Every public nonce (NONCE, or with a JOIN) and PSIG a node signed or admitted.

    Used to prove that no secret nonce was ever used twice: all public nonces
    differ, and each public nonce has at most one partial signature. A message
    seen twice (sent by one in-process node, received by another) counts once;
    two *different* values for one (sender, attempt) are kept, and fail the proof.
    """

    def __init__(self) -> None:
        self._nonces: dict[tuple[bytes, int], set[bytes]] = defaultdict(set)
        self._psigs: dict[tuple[bytes, int], set[bytes]] = defaultdict(set)

    def attach(self, node: Musig2Node) -> None:
        node.transport.observers.append(self._observe)
        node.transport.sent_observers.append(self._observe)

    def _observe(self, env: Envelope) -> None:
        import json
        if env.msg_type == MsgType.NONCE:
            b = json.loads(env.body)
            self._nonces[(env.sender, b["a"])].add(bytes.fromhex(b["pn"]))
        elif env.msg_type == MsgType.JOIN:
            b = json.loads(env.body)       # a nonce sent with the JOIN is for attempt la + 1
            if b.get("jn") is not None:
                self._nonces[(env.sender, b["la"] + 1)].add(bytes.fromhex(b["jn"]))
        elif env.msg_type == MsgType.PSIG:
            b = json.loads(env.body)
            self._psigs[(env.sender, b["a"])].add(bytes.fromhex(b["ps"]))

    @property
    def nonces(self) -> list[tuple[bytes, int, bytes]]:
        return [(s, a, v) for (s, a), vs in self._nonces.items() for v in vs]

    @property
    def psigs(self) -> list[tuple[bytes, int, bytes]]:
        return [(s, a, v) for (s, a), vs in self._psigs.items() for v in vs]


async def make_cluster(n: int, config: Musig2Config = FAST, approve=None, seckeys=None):
    nodes = []
    for i in range(n):
        sk = seckeys[i] if seckeys else os.urandom(32)
        node = Musig2Node(sk, config=config, approve=approve, chain=REGTEST)
        await node.start("127.0.0.1", 0, dht=False)
        nodes.append(node)
    connect(nodes)
    return nodes


def connect(nodes) -> None:
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b.pubkey, b.endpoint)


async def stop_all(nodes) -> None:
    await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


def by_key(nodes) -> dict:
    return {n.pubkey: n for n in nodes}


async def wait_event(node: Musig2Node, name: str, timeout: float, **match) -> dict:
    return await node.events.wait_for(
        name, lambda **kw: all(kw.get(k) == v for k, v in match.items()), timeout)


def nonce_reuse_report(log: WireLog) -> dict:
    """Map each (sender, pubnonce) to the set of partial signatures made in its attempt."""
    nonce_of: dict[tuple[bytes, int], bytes] = {}
    for s, a, pn in log.nonces:
        assert (s, a) not in nonce_of, "two public nonces for one attempt"
        nonce_of[(s, a)] = pn
    used = defaultdict(set)
    for s, a, ps in log.psigs:
        used[(s, nonce_of[(s, a)])].add(ps)
    return used


async def until(predicate, timeout: float, step: float = 0.02) -> None:
    """Poll a condition (for events that may already have fired before we could subscribe)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise asyncio.TimeoutError("condition not met in time")
        await asyncio.sleep(step)
