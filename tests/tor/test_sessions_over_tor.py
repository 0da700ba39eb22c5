"""Peer sessions through SOCKS5 on the private Tor network: a proxied node signs with a clearnet
one, every outbound connection of the proxied node goes through Tor, and a dead proxy means
"unreachable", never a direct connection."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.tor import ProxySpec, socks_connector
from musig2_plugin.transport import PeerUnreachable
from tests.harness.tornet import LOOPBACK, PrivateTorNetwork, free_port

pytestmark = [pytest.mark.slow]

CFG = Musig2Config().with_(round_timeout=20.0, coordinator_grace=5.0, heartbeat_interval=2.0,
                           connect_timeout=30.0, request_timeout=30.0)


class CountingConnector:
    """Passes every connection to the real SOCKS5 connector and records its destination."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.destinations: list[tuple[str, int]] = []

    async def create_connection(self, factory, host, port, **kwargs):
        self.destinations.append((host, port))
        return await self.inner.create_connection(factory, host, port, **kwargs)


async def test_a_proxied_node_signs_with_a_clearnet_node_through_tor(tor_network: PrivateTorNetwork) -> None:
    client = await asyncio.to_thread(tor_network.add_client, "sessions", control=None)
    counting = CountingConnector(socks_connector(ProxySpec(LOOPBACK, client.socks_port)))
    alice = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, connector=counting)
    bob = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
    await alice.start(dht=False)
    await bob.start(dht=False)
    try:
        alice.add_peer(bob.pubkey, bob.endpoint)
        bob.add_peer(alice.pubkey, alice.endpoint)
        keys = [alice.pubkey, bob.pubkey]
        msg = os.urandom(32)
        record = await alice.announce_signing_request(keys, [msg])
        ids = await asyncio.gather(alice.join_signing_request(record), bob.join_signing_request(record))
        sigs = await asyncio.gather(*(x.get_final_signature(ids[0][0], 60) for x in (alice, bob)))
        assert sigs[0] == sigs[1]
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
        # Every connection alice opened went to bob's endpoint through the SOCKS port.
        assert counting.destinations and set(counting.destinations) == {bob.endpoint}
        assert counting.inner.peername == (LOOPBACK, client.socks_port)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
        await asyncio.to_thread(tor_network.stop_node, client)


async def test_a_dead_proxy_is_unreachable_and_nothing_goes_direct() -> None:
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(4)
    listener.setblocking(False)
    dead_socks = free_port()   # nobody listens there
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG.with_(connect_timeout=2.0),
                      connector=socks_connector(ProxySpec(LOOPBACK, dead_socks)))
    await node.start(dht=False)
    try:
        with pytest.raises(PeerUnreachable, match="cannot connect"):
            await node.transport.pool.request(listener.getsockname()[:2], "m2.anything", [])
        with pytest.raises(BlockingIOError):
            listener.accept()   # the peer's listener never saw a connection
    finally:
        await node.stop()
        listener.close()


async def test_a_proxy_that_refuses_the_destination_is_unreachable(tor_network: PrivateTorNetwork) -> None:
    client = await asyncio.to_thread(tor_network.add_client, "refusing", control=None)
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG,
                      connector=socks_connector(ProxySpec(LOOPBACK, client.socks_port)))
    await node.start(dht=False)
    try:
        # No exit of the private network accepts a public address: Tor refuses, we report it.
        with pytest.raises(PeerUnreachable):
            await node.transport.pool.request(("192.0.2.7", 7000), "m2.anything", [])
    finally:
        await node.stop()
        await asyncio.to_thread(tor_network.stop_node, client)
