"""Whole MuSig2 sessions with participants that accept no connections, reached through relays.

Real Musig2Nodes on 127.0.0.1. An "unreachable" node's own server is closed after start, so
any direct connection to it fails (the test network of tests/netns does the same with a NAT);
it keeps outbound connections to a relay node and advertises the relay endpoint.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.session import SessionAborted
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.records import Endpoint, Reach
from musig2_plugin.transport import MsgType, RelayUnreachable

from session_cluster import FAST

CFG = FAST.with_(request_timeout=3.0, connect_timeout=1.0, relay_deliver_timeout=1.5,
                 relay_probe_interval=0.5)
MARKER = b"PLAINTEXT-PSBT-MARKER-" + os.urandom(8).hex().encode()


def relay_ep(node: Musig2Node) -> Endpoint:
    return Endpoint(*node.endpoint, Reach.RELAY, node.pubkey)


async def _node(*, relay: bool = False) -> Musig2Node:
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
    await node.start("127.0.0.1", 0, dht=False)
    if relay:
        node.enable_relay()
    return node


async def _unreachable(relays: list[Musig2Node]) -> Musig2Node:
    node = await _node()
    node.transport._server.close()            # nobody can connect to it any more
    await node.transport._server.wait_closed()
    await node.use_relays([relay_ep(r) for r in relays])
    return node


def _introduce(nodes: list[Musig2Node]) -> None:
    """What discovery gives every node: each peer's signed, advertised endpoint."""
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b.pubkey, b.advertised_endpoint)


async def _sign(creator: Musig2Node, nodes: list[Musig2Node]) -> tuple[bytes, bytes]:
    keys = [n.pubkey for n in nodes]
    msg = os.urandom(32)
    record = await creator.announce_signing_request(keys, [msg], app_data=MARKER)
    ids = await asyncio.gather(*(n.join_signing_request(record) for n in nodes))
    sigs = await asyncio.gather(*(n.get_final_signature(ids[0][0], timeout=30) for n in nodes))
    assert len(set(sigs)) == 1
    assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
    return msg, sigs[0]


async def test_three_of_three_with_two_participants_behind_a_relay() -> None:
    r = await _node(relay=True)
    a = await _node()
    b, c = await _unreachable([r]), await _unreachable([r])
    seen: list[bytes] = []
    r.transport.relay.observers.append(lambda key, method, data: seen.append(data))
    nodes = [a, b, c]
    try:
        assert b.advertised_endpoint == relay_ep(r) and b.relays_in_use == [relay_ep(r)]
        assert a.advertised_endpoint.kind is Reach.DIRECT
        _introduce(nodes)
        for creator in (a, b):                # a direct creator, then one behind the relay
            await _sign(creator, nodes)
        stats = r.transport.relay.stats
        assert stats.per_client[b.pubkey][0] > 0 and stats.per_client[c.pubkey][0] > 0
        assert a.pubkey not in stats.per_client
        # The relay carried the requests (pushed to b and c) yet never saw the payload's
        # plaintext: it is encrypted to the participants.
        assert any(len(d) > 500 for d in seen)
        assert not any(MARKER in d for d in seen)
        assert all(n.transport.refusals == {} for n in nodes)
    finally:
        for n in (a, b, c, r):
            await n.stop()


async def test_session_moves_to_another_relay_when_one_drops() -> None:
    r1, r2 = await _node(relay=True), await _node(relay=True)
    a = await _node()
    b = await _unreachable([r1, r2])
    nodes = [a, b]
    try:
        assert b.advertised_endpoint == relay_ep(r1)
        _introduce(nodes)

        async def drop(args):                  # r1 now swallows every frame silently
            await asyncio.sleep(3600)
        r1.transport.relay._send = drop
        # A sender through r1 hears which relay failed.
        env = a.transport.seal(MsgType.JOIN, os.urandom(32), b"{}")
        with pytest.raises(RelayUnreachable) as info:
            await a.transport.send(b.advertised_endpoint, env, to=b.pubkey)
        assert info.value.relay == relay_ep(r1)
        # b's probe notices, it moves to r2 and re-advertises; its JOINs carry r2 too.
        await b._relays.check()
        assert b.advertised_endpoint == relay_ep(r2) and b.relays_in_use == [relay_ep(r2)]
        await _sign(a, nodes)
        assert r2.transport.relay.stats.per_client[b.pubkey][0] > 0
    finally:
        for n in (a, b, r1, r2):
            await n.stop()


async def test_session_through_a_dropping_relay_fails_naming_it() -> None:
    """b's only relay swallows everything sent to b: the session aborts, and the reason names
    the relay (key and address) through which b could not be reached."""
    r = await _node(relay=True)
    a = await _node()
    b = await _unreachable([r])
    nodes = [a, b]
    try:
        _introduce(nodes)

        async def drop(args):
            await asyncio.sleep(3600)
        r.transport.relay._send = drop
        record = await a.announce_signing_request([a.pubkey, b.pubkey], [os.urandom(32)])
        ids = await asyncio.gather(*(n.join_signing_request(record) for n in nodes))
        with pytest.raises(SessionAborted) as info:
            await a.get_final_signature(ids[0][0], timeout=60)
        reason = str(info.value)
        assert f"relay {r.pubkey.hex()[:16]}@{r.endpoint.host}:{r.endpoint.port}" in reason, reason
        assert b.pubkey.hex()[:10] in reason
    finally:
        for n in (a, b, r):
            await n.stop()
