"""Relays on real aiorpcx sockets (127.0.0.1): a client without a reachable server is reached
through a relay; the relay is untrusted and bounded.

Three real transports: ``relay`` (relaying on), ``client`` (listening nowhere anyone is told:
peers only know its relay endpoint), ``sender``. Every refusal is checked on both sides: the
sender's typed error, and what the relay/client kept (counters, reservations, inbox).
"""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.records import Endpoint, Reach
from musig2_plugin.transport import (Envelope, MsgType, PeerRefused, PeerUnreachable,
                                     RelayClient, RelayLink, RelayUnreachable, Transport)
from musig2_plugin.transport.relay import (RESERVATION_LEN, BadReservation, check_reservation,
                                           sign_reservation)

SID = bytes(range(32))
CFG = Musig2Config(request_timeout=3.0, connect_timeout=2.0, relay_deliver_timeout=1.5,
                   relay_probe_interval=0.5)


def key(i: int) -> bytes:
    return (i + 1).to_bytes(32, "big")


class Peer:
    """A transport plus the membership table and inbox a session layer would have."""

    def __init__(self, seckey: bytes, config: Musig2Config, members: dict) -> None:
        self.inbox: list[Envelope] = []
        self.requests: list[bytes] = []
        self.t = Transport(seckey, config, chain=REGTEST, membership=members.get,
                           on_envelope=self._env,
                           on_request=self._req)

    async def _env(self, env: Envelope) -> None:
        self.inbox.append(env)

    async def _req(self, data: bytes, source: str = "") -> None:
        self.requests.append(data)


@pytest.fixture
async def trio():
    members: dict = {}
    relay, client, sender = (Peer(key(i), CFG, members) for i in range(3))
    members[SID] = {relay.t.pubkey, client.t.pubkey, sender.t.pubkey}
    service = relay.t.enable_relay()
    await relay.t.start()
    await sender.t.start()
    # The client's server listens on loopback but nobody is told: peers know only its relay.
    await client.t.start()
    link = RelayLink(client.t, relay_endpoint(relay))
    await link.open()
    yield relay, client, sender, service, link
    await link.close()
    for p in (relay, client, sender):
        await p.t.stop()


def relay_endpoint(relay: Peer) -> Endpoint:
    host, port = relay.t.endpoint
    return Endpoint(host, port, Reach.RELAY, relay.t.pubkey)


async def test_envelope_through_relay_reaches_client_end_to_end(trio) -> None:
    relay, client, sender, service, link = trio
    env = sender.t.seal(MsgType.JOIN, SID, b'{"x":1}')
    await sender.t.send(relay_endpoint(relay), env, to=client.t.pubkey)
    assert [e.encode() for e in client.inbox] == [env.encode()]
    assert relay.inbox == []                       # the relay did not consume it
    assert service.stats.messages == 1 and service.stats.per_client[client.t.pubkey][0] == 1
    # A pushed signing request travels the same way.
    await sender.t.push_request(relay_endpoint(relay), b"record-bytes", to=client.t.pubkey)
    assert client.requests == [b"record-bytes"]
    assert await link.probe() is True
    assert service.stats.probes == 1 and service.stats.messages == 2   # probes counted apart
    # The probe answer is bound to the client's secret: a relay cannot fake it.
    assert link.probe_answer("00") != RelayLink(client.t, relay_endpoint(relay)).probe_answer("00")


async def test_tampered_relayed_envelope_is_refused_by_the_client(trio) -> None:
    relay, client, sender, service, link = trio
    data = bytearray(sender.t.seal(MsgType.JOIN, SID, b'{"x":1}').encode())
    data[-70] ^= 1                                  # one body byte, as a relay could change it
    with pytest.raises(PeerRefused, match="BadSignature"):
        await sender.t.pool.request(relay.t.endpoint.address, C.RPC_RELAY_SEND,
                                    [client.t.pubkey.hex(), C.RPC_MESSAGE, bytes(data).hex()])
    assert client.inbox == []
    assert client.t.refusals.get("BadSignature") == 1
    assert link.alive                                # junk via the relay does not cut our link


async def test_relay_that_drops_is_named_and_the_client_moves_on() -> None:
    members: dict = {}
    r1, r2, client, sender = (Peer(key(i), CFG, members) for i in range(4))
    members[SID] = {p.t.pubkey for p in (r1, r2, client, sender)}
    s1, s2 = r1.t.enable_relay(), r2.t.enable_relay()
    for p in (r1, r2, sender, client):
        await p.t.start()
    changes: list[list[Endpoint]] = []
    rc = RelayClient(client.t, [relay_endpoint(r1), relay_endpoint(r2)], want=1,
                     on_change=changes.append)
    try:
        assert await rc.start() == [relay_endpoint(r1)]
        assert changes == [[relay_endpoint(r1)]]

        # r1 turns hostile: it accepts frames and silently never passes them on (a real relay
        # service whose forwarding step hangs, as a dropping relay behaves from outside).
        async def drop(args):
            await asyncio.sleep(3600)
        s1._send = drop
        env = sender.t.seal(MsgType.JOIN, SID, b'{"x":2}')
        with pytest.raises(RelayUnreachable) as info:
            await sender.t.send(relay_endpoint(r1), env, to=client.t.pubkey)
        assert info.value.relay == relay_endpoint(r1)
        assert r1.t.pubkey.hex()[:16] in str(info.value)
        assert client.inbox == []

        # The client's probe notices, it moves to r2 and says so (the node re-advertises).
        assert await rc.check() == [relay_endpoint(r2)]
        assert changes[-1] == [relay_endpoint(r2)]
        assert relay_endpoint(r1) in rc.failed
        await sender.t.send(relay_endpoint(r2), env, to=client.t.pubkey)
        assert [e.encode() for e in client.inbox] == [env.encode()]
        assert s2.stats.messages >= 1
    finally:
        await rc.close()
        for p in (r1, r2, client, sender):
            await p.t.stop()


async def test_no_reservation_and_relaying_off_are_typed(trio) -> None:
    relay, client, sender, service, link = trio
    stranger = Peer(key(9), CFG, {}).t.pubkey
    env = sender.t.seal(MsgType.JOIN, SID, b"{}")
    with pytest.raises(RelayUnreachable, match="NoReservation"):
        await sender.t.send(relay_endpoint(relay), env, to=stranger)
    # The sender itself does not relay: asking it to is refused.
    fake = Endpoint(*sender.t.endpoint, Reach.RELAY, sender.t.pubkey)
    with pytest.raises(RelayUnreachable, match="RelayDisabled"):
        await relay.t.send(fake, env, to=client.t.pubkey)
    # Relay methods never come down a client's link (even from a relay that tried).
    client.t.enable_relay()
    from aiorpcx import RPCError
    with pytest.raises(RPCError, match="RelayDisabled"):
        await client.t.dispatch(C.RPC_RELAY_SEND, [stranger.hex(), C.RPC_MESSAGE, "00"],
                                link.session)
    # After the client leaves, its reservation is gone.
    await link.close()
    await asyncio.sleep(0.1)
    with pytest.raises(RelayUnreachable, match="NoReservation"):
        await sender.t.send(relay_endpoint(relay), env, to=client.t.pubkey)
    assert client.t.pubkey not in service.reservations


@pytest.mark.parametrize("args, refusal", [
    ([], "MalformedRelayFrame"),
    (["00" * 33, C.RPC_MESSAGE], "MalformedRelayFrame"),
    (["zz", C.RPC_MESSAGE, "00"], "MalformedRelayFrame"),
    (["04" + "00" * 32, C.RPC_MESSAGE, "00"], "MalformedRelayFrame"),
    ([None, C.RPC_MESSAGE, "00"], "MalformedRelayFrame"),
    (["CLIENT", "m2.relay.send", "00"], "MalformedRelayFrame"),     # no nesting
    (["CLIENT", "getinfo", "00"], "MalformedRelayFrame"),
    (["CLIENT", C.RPC_MESSAGE, "0g"], "MalformedRelayFrame"),
    (["CLIENT", C.RPC_MESSAGE, 5], "MalformedRelayFrame"),
])
async def test_malformed_relay_frames_are_refused(trio, args, refusal) -> None:
    relay, client, sender, service, link = trio
    args = [client.t.pubkey.hex() if a == "CLIENT" else a for a in args]
    with pytest.raises(PeerRefused, match=refusal):
        await sender.t.pool.request(relay.t.endpoint.address, C.RPC_RELAY_SEND, args)
    assert service.stats.refusals == {refusal: 1}
    assert client.inbox == [] and service.stats.messages == 0
    assert await link.probe()                   # the relay still works


async def test_oversize_relayed_payload_is_refused_unforwarded(trio) -> None:
    relay, client, sender, service, link = trio
    big = "00" * (CFG.relay_frame_limit + 1)
    forwarded: list = []
    service.observers.append(lambda *a: forwarded.append(a))
    with pytest.raises(PeerRefused, match="RelayFrameTooLarge"):
        await sender.t.pool.request(relay.t.endpoint.address, C.RPC_RELAY_SEND,
                                    [client.t.pubkey.hex(), C.RPC_MESSAGE, big])
    assert forwarded == [] and service.stats.refusals == {"RelayFrameTooLarge": 1}
    # Beyond the framer's cap the relay drops the line unparsed and closes that connection.
    with pytest.raises(PeerUnreachable):
        await sender.t.pool.request(relay.t.endpoint.address, C.RPC_RELAY_SEND,
                                    [client.t.pubkey.hex(), C.RPC_MESSAGE,
                                     "00" * CFG.max_message_bytes])
    assert forwarded == []
    assert await link.probe()


async def test_budgets_per_client_are_enforced() -> None:
    cfg = CFG.with_(relay_messages_per_reservation=3)
    members: dict = {}
    relay, client, sender = (Peer(key(i), cfg, members) for i in range(3))
    members[SID] = {relay.t.pubkey, client.t.pubkey, sender.t.pubkey}
    service = relay.t.enable_relay()
    for p in (relay, client, sender):
        await p.t.start()
    link = RelayLink(client.t, relay_endpoint(relay))
    await link.open()
    try:
        for i in range(3):
            await sender.t.send(relay_endpoint(relay), sender.t.seal(MsgType.JOIN, SID, b"{}"),
                                to=client.t.pubkey)
        with pytest.raises(RelayUnreachable, match="RelayQuotaExceeded"):
            await sender.t.send(relay_endpoint(relay), sender.t.seal(MsgType.JOIN, SID, b"{}"),
                                to=client.t.pubkey)
        assert len(client.inbox) == 3
        assert service.reservations[client.t.pubkey].messages == 3
    finally:
        await link.close()
        for p in (relay, client, sender):
            await p.t.stop()


def test_reservation_format_is_strict() -> None:
    rkey = Peer(key(0), CFG, {}).t.pubkey
    ckey = Peer(key(1), CFG, {}).t.pubkey
    good = sign_reservation(key(1), ckey, rkey)
    assert len(good) == RESERVATION_LEN and check_reservation(good, rkey, 120) == ckey
    other_relay = Peer(key(5), CFG, {}).t.pubkey
    cases = [good[:-1], good + b"\0", bytes([2]) + good[1:],
             sign_reservation(key(1), ckey, other_relay),              # for another relay
             sign_reservation(key(1), ckey, rkey, now=1_000_000),      # stale
             sign_reservation(key(2), ckey, rkey)]                     # not signed by its key
    flipped = bytearray(good)
    flipped[-1] ^= 1
    cases.append(bytes(flipped))
    for bad in cases:
        with pytest.raises(BadReservation):
            check_reservation(bad, rkey, 120)


async def test_reservation_flood_is_bounded() -> None:
    """Many keys on many connections ask for slots: the relay holds at most its bound, refuses
    the rest with RelayFull, allows one reservation per connection, and keeps working."""
    cfg = CFG.with_(relay_max_reservations=8)
    relay = Peer(key(0), cfg, {})
    service = relay.t.enable_relay()
    await relay.t.start()
    flooders = [Transport(os.urandom(32), cfg, chain=REGTEST, membership=lambda s: None,
                          on_envelope=None, on_request=None) for _ in range(40)]
    outcomes: dict[str, int] = {}
    links = []
    try:
        for t in flooders:
            link = RelayLink(t, relay_endpoint(relay))
            links.append(link)
            try:
                await link.open()
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except PeerRefused as exc:
                name = str(exc).split(": ")[1]
                outcomes[name] = outcomes.get(name, 0) + 1
        assert outcomes == {"ok": 8, "RelayFull": 32}
        assert len(service.reservations) == 8
        # One connection may not hold a second key's reservation.
        holder = next(l for l in links if l.alive and l.transport.pubkey in service.reservations)
        other = os.urandom(32)
        from musig2_plugin.crypto import plain_pubkey
        data = sign_reservation(other, plain_pubkey(other), relay.t.pubkey)
        with pytest.raises(PeerRefused, match="BadReservation"):
            await holder._call(C.RPC_RELAY_RESERVE, [data.hex()])
        # Garbage reservations: typed, nothing stored.
        for junk in (["00"], ["zz"], [], ["00" * RESERVATION_LEN], [1]):
            with pytest.raises(PeerRefused, match="MalformedRelayFrame|BadReservation"):
                await holder._call(C.RPC_RELAY_RESERVE, junk)
        assert len(service.reservations) == 8
        # Clients that leave free their slots for newcomers.
        for link in links[:8]:
            await link.close()
        await asyncio.sleep(0.1)
        late = RelayLink(flooders[-1], relay_endpoint(relay))
        links.append(late)
        await late.open()
        assert flooders[-1].pubkey in service.reservations and len(service.reservations) <= 8
    finally:
        for link in links:
            await link.close()
        await relay.t.stop()


async def test_reservation_expires_without_renewal() -> None:
    cfg = CFG.with_(relay_reservation_ttl=0.3)
    members: dict = {}
    relay, client, sender = (Peer(key(i), cfg, members) for i in range(3))
    members[SID] = {relay.t.pubkey, client.t.pubkey, sender.t.pubkey}
    relay.t.enable_relay()
    for p in (relay, client, sender):
        await p.t.start()
    link = RelayLink(client.t, relay_endpoint(relay))
    await link.open()
    try:
        await asyncio.sleep(0.4)
        with pytest.raises(RelayUnreachable, match="NoReservation"):
            await sender.t.send(relay_endpoint(relay), sender.t.seal(MsgType.JOIN, SID, b"{}"),
                                to=client.t.pubkey)
        assert await link.maintain() is True          # renewal brings it back
        await sender.t.send(relay_endpoint(relay), sender.t.seal(MsgType.JOIN, SID, b"{}"),
                            to=client.t.pubkey)
        assert len(client.inbox) == 1
    finally:
        await link.close()
        for p in (relay, client, sender):
            await p.t.stop()


def test_endpoint_type_forms() -> None:
    rk = Peer(key(0), CFG, {}).t.pubkey
    d = Endpoint("203.0.113.5", 7800)
    r = Endpoint("203.0.113.5", 7800, Reach.RELAY, rk)
    o = Endpoint("abcdefghijklmnop.onion", 7800, Reach.ONION)
    assert d == ("203.0.113.5", 7800) and hash(d) == hash(("203.0.113.5", 7800))
    assert o == ("abcdefghijklmnop.onion", 7800) and o != Endpoint(*o)    # kind still counts
    assert r != d and r != ("203.0.113.5", 7800) and tuple(r) == ("203.0.113.5", 7800)
    for ep in (d, r, o):
        assert Endpoint.from_json(json.loads(json.dumps(ep.to_json()))) == ep
    from musig2_plugin.foundation.endpoint import InvalidEndpoint as InvalidField
    for bad in (["h", 1, "relay"], ["h", 1, "relay", "00"], ["h", 1, "tor"], ["h", 0],
                ["h", 1, "onion"], ["h", True], "h:1", ["h", 1, "direct", "x"]):
        with pytest.raises(InvalidField):
            Endpoint.from_json(bad)
    with pytest.raises(InvalidField):
        Endpoint("h", 1, Reach.DIRECT, rk)
    with pytest.raises(InvalidField):
        Endpoint("h", 1, Reach.RELAY, b"\x04" + bytes(32))


async def test_an_impostor_at_the_relay_address_is_refused_before_reserving() -> None:
    """The endpoint names relay key K; the node listening there holds another key: the hello
    handshake fails and nothing is reserved there."""
    members: dict = {}
    relay, client = Peer(key(0), CFG, members), Peer(key(1), CFG, members)
    service = relay.t.enable_relay()
    await relay.t.start()
    await client.t.start()
    wrong = Endpoint(*relay.t.endpoint, Reach.RELAY, Peer(key(7), CFG, {}).t.pubkey)
    link = RelayLink(client.t, wrong)
    try:
        with pytest.raises(PeerRefused, match="not the one expected"):
            await link.open()
        assert service.reservations == {} and not link.alive
    finally:
        await link.close()
        for p in (relay, client):
            await p.t.stop()


async def test_junk_passed_on_by_the_relay_never_closes_the_link() -> None:
    """Anyone can push junk at a client through its relay. It is refused and counted, but the
    link stays: with the node-wide junk budget spent (tiny here), a direct connection would be
    closed at its first junk message; the relay link is our only way in."""
    cfg = CFG.with_(junk_rate_per_sec=0.1, junk_burst=2, block_after_invalid=3)
    members: dict = {}
    relay, client, sender = (Peer(key(i), cfg, members) for i in range(3))
    members[SID] = {relay.t.pubkey, client.t.pubkey, sender.t.pubkey}
    relay.t.enable_relay()
    for p in (relay, client, sender):
        await p.t.start()
    link = RelayLink(client.t, relay_endpoint(relay))
    await link.open()
    try:
        data = bytearray(sender.t.seal(MsgType.JOIN, SID, b'{"x":1}').encode())
        data[-70] ^= 1
        for _ in range(12):
            with pytest.raises(PeerRefused, match="BadSignature"):
                await sender.t.pool.request(relay.t.endpoint.address, C.RPC_RELAY_SEND,
                                            [client.t.pubkey.hex(), C.RPC_MESSAGE,
                                             bytes(data).hex()])
        assert link.alive and link.session.invalid_messages == 12
        assert client.t.refusals.get("BadSignature") == 12
        assert await link.probe()
        await sender.t.send(relay_endpoint(relay), sender.t.seal(MsgType.JOIN, SID, b"{}"),
                            to=client.t.pubkey)
        assert len(client.inbox) == 1
    finally:
        await link.close()
        for p in (relay, client, sender):
            await p.t.stop()
