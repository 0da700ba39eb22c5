"""The control-port client and the node's ephemeral onion service on the private Tor network:
cookie (SAFECOOKIE) and password authentication, refusals, a hostile control port, and a 2-of-2
signing session between two Tor-only nodes reachable only as onion services."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.tor import (ControlSettings, OnionService, ProxySpec, TorAuthError, TorControl,
                               TorControlError, socks_connector)
from tests.harness.tornet import LOOPBACK, PrivateTorNetwork, TorNode, free_port, socks5_connect

pytestmark = [pytest.mark.slow]

CFG = Musig2Config().with_(round_timeout=30.0, coordinator_grace=10.0, heartbeat_interval=3.0,
                           connect_timeout=60.0, request_timeout=60.0)


@pytest.fixture(scope="module")
def tor_clients(tor_network: PrivateTorNetwork):
    """Two Tor clients with control ports: one with cookie, one with password authentication."""
    cookie = tor_network.add_client("onion-cookie", control="cookie")
    password = tor_network.add_client("onion-password", control="password", password="pw 'quoted\" x")
    yield cookie, password
    tor_network.stop_node(cookie)
    tor_network.stop_node(password)


def _cookie(node: TorNode) -> ControlSettings:
    return ControlSettings(LOOPBACK, node.control_port)


def _password(node: TorNode, password: str | None = None) -> ControlSettings:
    return ControlSettings(LOOPBACK, node.control_port,
                           password=node.control_password if password is None else password)


async def test_safecookie_and_password_authentication(tor_clients) -> None:
    cookie, password = tor_clients
    for settings in (_cookie(cookie), _password(password)):
        control = await TorControl.connect(settings)
        try:
            assert (await control.getinfo("version")).startswith("0.4.9")
        finally:
            await control.close()


async def test_authentication_refusals_are_typed(tor_clients, tmp_path: Path) -> None:
    cookie, password = tor_clients
    with pytest.raises(TorAuthError, match="refused the authentication"):
        await TorControl.connect(_password(password, "wrong"))
    with pytest.raises(TorAuthError, match="does not accept a password"):
        await TorControl.connect(_password(cookie, "anything"))
    with pytest.raises(TorAuthError, match="needs a password"):
        await TorControl.connect(_cookie(password))
    short = tmp_path / "short-cookie"
    short.write_bytes(b"\x01" * 31)
    with pytest.raises(TorAuthError, match="not 32 bytes"):
        await TorControl.connect(ControlSettings(LOOPBACK, cookie.control_port, cookie_file=str(short)))
    forged = tmp_path / "forged-cookie"
    forged.write_bytes(os.urandom(32))
    with pytest.raises(TorAuthError, match="not our Tor"):
        await TorControl.connect(ControlSettings(LOOPBACK, cookie.control_port, cookie_file=str(forged)))
    with pytest.raises(TorControlError, match="cannot reach"):
        await TorControl.connect(ControlSettings(LOOPBACK, free_port()), timeout=5)


async def _hostile_port(script: bytes, *, then_silent: bool = False):
    """A control port that answers anything with ``script`` (a fake: real Tor never misbehaves,
    and the client must survive a port squatted by another program)."""

    async def handle(reader, writer):
        await reader.readline()
        writer.write(script)
        await writer.drain()
        if then_silent:
            await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("script,match", [
    (b"garbage\r\n", "malformed"),
    (b"250-" + b"x" * 20000 + b"\r\n", "too long"),
    (b"250-AUTH METHODS=NULL\r\n" * 300 + b"250 OK\r\n", "too many lines"),
    (b"250-AUTH METHODS=NULL\r\n550 mixed\r\n", "mixes status"),
    (b"", "closed the connection"),
    (b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=SAFECOOKIE COOKIEFILE=\"/nonexistent/c\"\r\n250 OK\r\n",
     "cannot read the Tor cookie file"),
])
async def test_a_hostile_control_port_gets_a_typed_error(script: bytes, match: str) -> None:
    server, port = await _hostile_port(script)
    try:
        with pytest.raises(TorControlError, match=match):
            await TorControl.connect(ControlSettings(LOOPBACK, port), timeout=5)
    finally:
        server.close()


async def test_a_silent_control_port_times_out() -> None:
    server, port = await _hostile_port(b"250-PROTOCOLINFO 1\r\n", then_silent=True)
    try:
        with pytest.raises(TorControlError, match="did not answer in time"):
            await TorControl.connect(ControlSettings(LOOPBACK, port), timeout=1)
    finally:
        server.close()


async def test_onion_service_lifecycle(tor_clients) -> None:
    cookie, visitor = tor_clients
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen(4)
    service = await OnionService.create(_cookie(cookie), server.getsockname(), virtual_port=7327)
    host, port = service.endpoint
    assert host.endswith(".onion") and len(host) == 62 and port == 7327
    assert await service.current_services() == [host[:-6]]
    # create() waited for the descriptor uploads: the first attempt from another client works.
    await asyncio.to_thread(lambda: socks5_connect(visitor.socks_port, host, port, timeout=60).close())
    server.settimeout(10)
    server.accept()[0].close()
    server.close()
    await service.close()
    await service.close()   # idempotent
    control = await TorControl.connect(_cookie(cookie))
    try:
        assert await control.getinfo("onions/current") in ("", "\n")   # nothing left published
        with pytest.raises(TorControlError, match="no matching event"):
            await control.wait_event(lambda event: True, 1)   # nothing subscribed, nothing comes
        with pytest.raises(TorControlError, match="not a v3 onion"):
            await control.del_onion("example.onion")
        with pytest.raises(TorControlError, match="one line"):
            await control.command("GETINFO version\r\nSIGNAL HALT")
    finally:
        await control.close()


class CountingConnector:
    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.destinations: list[tuple[str, int]] = []

    async def create_connection(self, factory, host, port, **kwargs):
        self.destinations.append((host, port))
        return await self.inner.create_connection(factory, host, port, **kwargs)


async def test_two_tor_only_nodes_sign_through_their_onion_services(tor_clients) -> None:
    nodes, services, counters = [], [], []
    try:
        for client, settings in zip(tor_clients, (_cookie(tor_clients[0]), _password(tor_clients[1]))):
            counting = CountingConnector(socks_connector(ProxySpec(LOOPBACK, client.socks_port)))
            node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, connector=counting)
            await node.start(LOOPBACK, 0, dht=False)
            service = await OnionService.create(settings, node.endpoint)
            node.set_public_endpoint(service.endpoint)
            assert node.public_endpoint == service.endpoint
            assert node.network_status()["reachable"] == "onion"
            nodes.append(node)
            services.append(service)
            counters.append(counting)
        alice, bob = nodes
        alice.add_peer(bob.pubkey, bob.public_endpoint)
        keys = [alice.pubkey, bob.pubkey]
        msg = os.urandom(32)
        # OnionService.create returned once the descriptors were on the HSDirs: the one push
        # of the request (no retry) reaches bob through his onion at once.
        record = await alice.announce_signing_request(keys, [msg])
        assert bob.requests, "bob never received the request through his onion service"
        ids = await asyncio.gather(alice.join_signing_request(record), bob.join_signing_request(record))
        sigs = await asyncio.gather(*(x.get_final_signature(ids[0][0], 120) for x in nodes))
        assert sigs[0] == sigs[1]
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
        # Every connection either node opened went to an onion address, through its own Tor.
        assert counters[0].destinations and counters[1].destinations
        for c, other in ((counters[0], bob), (counters[1], alice)):
            assert set(c.destinations) == {other.public_endpoint}
    finally:
        for service in services:
            await service.close()
        await asyncio.gather(*(n.stop() for n in nodes))


SID = "a" * 56


async def _scripted_port(answers: dict[str, bytes]):
    """A control port answering each command (by its first word) with a fixed script: a fake,
    to drive the event paths real Tor only takes on the real network (failed uploads)."""

    async def handle(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(answers.get(line.split()[0].decode(), b"510 Unrecognized command\r\n"))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    return server, server.sockets[0].getsockname()[1]


BASE = {"PROTOCOLINFO": b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n",
        "AUTHENTICATE": b"250 OK\r\n", "SETEVENTS": b"250 OK\r\n"}


async def test_events_interleaved_with_replies_are_kept_and_failed_uploads_time_out() -> None:
    # Only FAILED uploads come (and arrive before ADD_ONION's own reply): no success, timeout.
    answers = dict(BASE, ADD_ONION=(
        f"650 HS_DESC UPLOAD {SID} UNKNOWN $AA x\r\n650 HS_DESC FAILED {SID} UNKNOWN $AA REASON=X\r\n"
        f"250-ServiceID={SID}\r\n250 OK\r\n").encode())
    server, port = await _scripted_port(answers)
    try:
        control = await TorControl.connect(ControlSettings(LOOPBACK, port), timeout=5)
        try:
            with pytest.raises(TorControlError, match="no matching event"):
                await control.add_onion(7327, (LOOPBACK, 1), publish_timeout=1)
        finally:
            await control.close()
    finally:
        server.close()
    # UPLOAD then UPLOADED, both before the reply: add_onion returns at once with the address.
    answers["ADD_ONION"] = (
        f"650 HS_DESC UPLOAD {SID} UNKNOWN $AA x\r\n650 HS_DESC UPLOADED {SID} UNKNOWN $AA\r\n"
        f"250-ServiceID={SID}\r\n250 OK\r\n").encode()
    server, port = await _scripted_port(answers)
    try:
        control = await TorControl.connect(ControlSettings(LOOPBACK, port), timeout=5)
        try:
            assert await control.add_onion(7327, (LOOPBACK, 1), publish_timeout=5) == SID + ".onion"
        finally:
            await control.close()
    finally:
        server.close()
    # A ServiceID that is not a v3 address is refused.
    answers["ADD_ONION"] = b"250-ServiceID=../../etc\r\n250 OK\r\n"
    server, port = await _scripted_port(answers)
    try:
        control = await TorControl.connect(ControlSettings(LOOPBACK, port), timeout=5)
        try:
            with pytest.raises(TorControlError, match="valid v3 ServiceID"):
                await control.add_onion(7327, (LOOPBACK, 1))
        finally:
            await control.close()
    finally:
        server.close()


async def test_events_further_apart_than_the_reply_timeout_are_still_awaited() -> None:
    """Descriptor uploads on the real network can take longer than one control reply may:
    waiting for an event uses the event's own deadline, not the per-reply timeout."""

    async def handle(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            word = line.split()[0].decode()
            writer.write(BASE.get(word, b"510 Unrecognized command\r\n"))
            await writer.drain()
            if word == "SETEVENTS":
                await asyncio.sleep(2.5)                       # longer than the 1 s reply timeout
                writer.write(f"650 HS_DESC UPLOADED {SID} UNKNOWN $AA\r\n".encode())
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    try:
        control = await TorControl.connect(ControlSettings(LOOPBACK, server.sockets[0].getsockname()[1]),
                                           timeout=1)
        try:
            await control.command("SETEVENTS HS_DESC")
            event = await control.wait_event(lambda e: e.lines[0].startswith("HS_DESC UPLOADED"), 10)
            assert event.lines[0].split()[2] == SID
        finally:
            await control.close()
    finally:
        server.close()
