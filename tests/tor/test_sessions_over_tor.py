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
from musig2_plugin.tor import ControlSettings, ProxySpec, TorControl, socks_connector
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
        assert counting.inner.last.peername == (LOOPBACK, client.socks_port)
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


class _Plain(asyncio.Protocol):
    """A protocol that does nothing (aiorpcx's SOCKS connector sets attributes on it)."""


async def test_connections_to_different_peers_use_different_circuits(tor_network: PrivateTorNetwork) -> None:
    """IsolatingConnector: one SOCKS username per destination, so Tor builds a circuit per peer."""
    client = await asyncio.to_thread(tor_network.add_client, "isolation", control="cookie")
    servers = [await asyncio.start_server(lambda r, w: None, LOOPBACK, 0) for _ in range(2)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    transports = []
    control = None
    try:
        connector = socks_connector(ProxySpec(LOOPBACK, client.socks_port))
        for port in ports + ports[:1]:          # peer A, peer B, peer A again
            transport, _ = await connector.create_connection(_Plain, LOOPBACK, port)
            transports.append(transport)
        control = await TorControl.connect(ControlSettings(LOOPBACK, client.control_port))
        streams = [line.split() for line in (await control.getinfo("stream-status")).splitlines()
                   if line.strip()]
        circuit_of: dict[int, set[str]] = {}
        for _sid, status, circuit, target in streams:   # target: 127.0.0.1.<exit fp>.exit:port
            assert status == "SUCCEEDED"
            circuit_of.setdefault(int(target.rsplit(":", 1)[1]), set()).add(circuit)
        assert sum(len(c) for c in circuit_of.values()) >= 2 and len(streams) == 3
        a, b = ports
        assert len(circuit_of[a]) == 1                        # the same peer: one circuit
        assert circuit_of[a].isdisjoint(circuit_of[b])        # different peers: different ones
    finally:
        for t in transports:
            t.close()
        if control is not None:
            await control.close()
        for s in servers:
            s.close()
        await asyncio.to_thread(tor_network.stop_node, client)


async def test_a_node_without_proxy_never_resolves_an_onion_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7686: a clearnet node handed an onion endpoint refuses it without any DNS query."""
    lookups: list[object] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):   # records, then does the real lookup
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
    await node.start(LOOPBACK, 0, dht=False)
    try:
        for host in ("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz234567.onion", "X.ONION."):
            with pytest.raises(PeerUnreachable, match="needs a Tor proxy"):
                await node.transport.pool.request((host, 7327), "m2.anything", [])
        assert not [h for h in lookups if "onion" in str(h).lower()]
    finally:
        await node.stop()


@pytest.mark.parametrize("reply,silent", [(b"\x04\x5a" + b"\x00" * 6, False),   # a SOCKS4 answer
                                          (b"HTTP/1.1 400 Bad Request\r\n\r\n", False),
                                          (b"\x05\x00\x05\x01\x00", False),      # refused, cut short
                                          (b"", True)])                          # never answers
async def test_a_hostile_or_silent_proxy_is_unreachable(reply: bytes, silent: bool) -> None:
    """Whatever the proxy answers (a fake: a squatter on the proxy port, not Tor), the send ends
    with PeerUnreachable within the connect timeout and nothing else is tried."""

    async def handle(reader, writer):
        await reader.read(3)
        if silent:
            await asyncio.sleep(30)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG.with_(connect_timeout=2.0),
                      connector=socks_connector(ProxySpec(LOOPBACK, server.sockets[0].getsockname()[1])))
    await node.start(LOOPBACK, 0, dht=False)
    try:
        with pytest.raises(PeerUnreachable, match="cannot connect"):
            await asyncio.wait_for(node.transport.pool.request(("203.0.113.9", 7000), "m2.x", []), 10)
    finally:
        await node.stop()
        server.close()
