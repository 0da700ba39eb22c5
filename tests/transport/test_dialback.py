"""Dial-back on real sockets (127.0.0.1): a node learns the address peers see it from and
whether they can connect back to it; only the key's owner passes the challenge.

The NAT cases (a port-forwarded node reachable, a masqueraded one not) run on the test
internet in tests/netns/test_reachability.py.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.records import Endpoint
from musig2_plugin.transport import PeerRefused
from musig2_plugin.transport.dialback import ask_dialback, probe_reachability

CFG = Musig2Config(connect_timeout=1.0, request_timeout=3.0)


async def _nodes(n: int) -> list[Musig2Node]:
    out = []
    for _ in range(n):
        node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
        await node.start("127.0.0.1", 0, dht=False)
        out.append(node)
    return out


async def test_reachable_node_is_confirmed_and_advertises_what_peers_see() -> None:
    a, b, c = await _nodes(3)
    try:
        result = await a.learn_reachability([b.endpoint, c.endpoint])
        assert result.reachable and result.public_ip == "127.0.0.1"
        assert [r.reachable for r in result.results] == [True, True]
        assert all(r.seen[0] == "127.0.0.1" for r in result.results)
        assert a.advertised_endpoint == Endpoint("127.0.0.1", a.endpoint.port)
        assert b.dialback.served == 1 and c.dialback.served == 1
    finally:
        for n in (a, b, c):
            await n.stop()


async def test_closed_port_or_wrong_port_is_unreachable() -> None:
    a, b = await _nodes(2)
    try:
        before = a.advertised_endpoint
        # Nothing listens on that port: the dial-back fails.
        spare = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        free = spare.sockets[0].getsockname()[1]
        spare.close()
        await spare.wait_closed()
        result = await a.learn_reachability([b.endpoint], port=free)
        assert result.public_ip == "127.0.0.1" and not result.reachable
        assert a.advertised_endpoint == before          # nothing advertised
    finally:
        for n in (a, b):
            await n.stop()


async def test_someone_elses_open_port_does_not_count() -> None:
    """Claiming a port where another node answers: that node signs with its own key, not ours."""
    a, b, other = await _nodes(3)
    try:
        result = await ask_dialback(a.transport, b.endpoint, other.endpoint.port)
        assert result.seen is not None and result.reachable is False
        # And a key claim for which nobody answers on the port is refused the same way.
        answer = await b.transport.pool.request(a.endpoint.address, C.RPC_DIALBACK,
                                                [other.pubkey.hex(), a.endpoint.port])
        assert answer["reachable"] is False
    finally:
        for n in (a, b, other):
            await n.stop()


@pytest.mark.parametrize("args", [
    [], ["00"], ["zz" * 33, 80], ["04" + "00" * 32, 80], ["02" + "00" * 32, 0],
    ["02" + "00" * 32, 70000], ["02" + "00" * 32, True], ["02" + "00" * 32, "80"],
])
async def test_malformed_dialback_requests_are_refused(args) -> None:
    a, b = await _nodes(2)
    try:
        with pytest.raises(PeerRefused, match="MalformedDialback"):
            await a.transport.pool.request(b.endpoint.address, C.RPC_DIALBACK, args)
        for bad in ([], ["00" * 32], ["00" * 32, "zz" * 33], [1, 2]):
            with pytest.raises(PeerRefused, match="MalformedDialback"):
                await a.transport.pool.request(b.endpoint.address, C.RPC_DIALBACK_CHALLENGE, bad)
        assert b.dialback.served == 0
    finally:
        for n in (a, b):
            await n.stop()


async def test_dialbacks_served_are_rate_limited() -> None:
    a, b = await _nodes(2)
    try:
        results = await asyncio.gather(*(ask_dialback(a.transport, b.endpoint, a.endpoint.port)
                                         for _ in range(40)))
        busy = [r for r in results if r.error and "DialbackBusy" in r.error]
        assert busy and b.dialback.served <= 21
        assert sum(r.reachable for r in results) == b.dialback.served
    finally:
        for n in (a, b):
            await n.stop()


async def test_unreachable_peers_give_no_answer() -> None:
    (a,) = await _nodes(1)
    try:
        result = await probe_reachability(a.transport, [Endpoint("127.0.0.1", 1)], 9)
        assert result.public_ip is None and not result.reachable
        assert result.results[0].error
    finally:
        await a.stop()


async def test_a_verified_loopback_address_is_not_published_on_testnet() -> None:
    """Dial-back works on loopback, but on a real chain 127.0.0.1 is nobody's address: the node
    does not call itself directly reachable and publishes nothing."""
    from musig2_plugin.foundation.chain import TESTNET
    a = Musig2Node(os.urandom(32), chain=TESTNET, config=CFG)
    b = Musig2Node(os.urandom(32), chain=TESTNET, config=CFG)
    await a.start("127.0.0.1", 0, dht=False)
    await b.start("127.0.0.1", 0, dht=False)
    try:
        assert a.public_endpoint is None
        result = await a.learn_reachability([b.endpoint])
        assert result.results[0].reachable            # the peer's dial-back itself worked
        assert not result.reachable and "127.0.0.1" in (result.refused or "")
        assert a.public_endpoint is None
        assert a.reach_summary()["path"] == "none"
    finally:
        await asyncio.gather(a.stop(), b.stop())
