"""Transport: signed envelopes over real aiorpcx sockets on 127.0.0.1.

Every refusal path (forged, replayed, moved to another session, relabelled,
stale, non-participant, blocked, rate-limited, oversized) is driven through a
real connection and checked both on the sender's side (typed error) and on
the receiver's (nothing delivered, counters charged to the right party).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.transport import (AuthenticRefusal, Envelope, MalformedEnvelope, MsgType,
                                     PeerRefused, PeerUnreachable, ReplayGuard,
                                     ReplayedMessage, Transport)
from musig2_plugin.transport.envelope import CounterSource, WrongChainMessage

SID_A = bytes(range(32))
SID_B = bytes(range(1, 33))


def key(i: int) -> bytes:
    return (i + 1).to_bytes(32, "big")


BAD_BODY = b'{"bad":true}'


class InvalidBody(AuthenticRefusal):
    """What the session layer raises for a correctly signed, invalid message."""


class Peer:
    """A transport plus the minimal membership table and inbox a session layer would have."""

    def __init__(self, seckey: bytes, config: Musig2Config, members: dict) -> None:
        self.inbox: list[Envelope] = []
        self.requests: list[bytes] = []
        self.members = members
        self.t = Transport(seckey, config, membership=self.members.get,
                           on_envelope=self._on_env, on_request=self._on_req, chain=REGTEST)

    async def _on_env(self, env: Envelope) -> None:
        # Strict stand-in for the session layer's refusal of a signed but invalid body
        # (BadBody, InvalidContribution): exactly this body, nothing else, is refused.
        if env.body == BAD_BODY:
            raise InvalidBody("body refused by the session layer")
        self.inbox.append(env)

    async def _on_req(self, data: bytes, source: str) -> None:
        assert source == "127.0.0.1"
        if data.startswith(b"bad"):
            raise ValueError("not a record")
        self.requests.append(data)


@pytest.fixture
async def pair():
    cfg = Musig2Config().with_(block_after_invalid=4, request_timeout=2.0, connect_timeout=2.0)
    alice_pk, bob_pk = plain_pubkey(key(0)), plain_pubkey(key(1))
    members = {SID_A: {alice_pk, bob_pk}, SID_B: {alice_pk, bob_pk}}
    alice, bob = Peer(key(0), cfg, members), Peer(key(1), cfg, members)
    await alice.t.start("127.0.0.1", 0)
    await bob.t.start("127.0.0.1", 0)
    yield alice, bob
    await alice.t.stop()
    await bob.t.stop()


def test_envelope_roundtrip_and_strict_decode():
    env = Envelope.sign(key(0), msg_type=MsgType.NONCE, session_id=SID_A,
                        sender=plain_pubkey(key(0)), counter=7, body=b'{"x":1}', chain=REGTEST)
    data = env.encode()
    back = Envelope.decode(data, chain=REGTEST)
    assert back == env and back.verify()
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(data[:-1], chain=REGTEST)                       # truncated
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(b"\x09" + data[1:], chain=REGTEST)              # unknown version
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(data[:1] + b"\x63" + data[2:], chain=REGTEST)   # unknown message type
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(b"short", chain=REGTEST)
    big = bytearray(data)
    big[87:91] = (C.MAX_ENVELOPE_BODY_BYTES + 1).to_bytes(4, "big")
    with pytest.raises(MalformedEnvelope):
        Envelope.decode(bytes(big), chain=REGTEST)


@pytest.mark.parametrize("offset", [1, 2, 5, 6, 44, 74, 84, 104])
def test_any_changed_signed_byte_breaks_the_signature(offset):
    """Type (1), chain (2..5), session id (6..37), sender/counter/time (38..95) and body are
    all bound: a chain byte changed is refused as another chain's message, and even a node
    of that other chain finds the signature broken."""
    env = Envelope.sign(key(0), msg_type=MsgType.PSIG, session_id=SID_A,
                        sender=plain_pubkey(key(0)), counter=1, body=b"0123456789abcdef" * 2,
                        chain=REGTEST)
    data = bytearray(env.encode())
    data[offset] ^= 0x01
    if 2 <= offset < 2 + C.CHAIN_ID_LEN:
        with pytest.raises(WrongChainMessage):
            Envelope.decode(bytes(data), chain=REGTEST)
        relabelled = Envelope.decode(bytes(data), chain=bytes(data[2:2 + C.CHAIN_ID_LEN]))
        assert not relabelled.verify()
        return
    try:
        tampered = Envelope.decode(bytes(data), chain=REGTEST)
    except MalformedEnvelope:
        return  # a changed type byte may no longer name a known type: refused as well
    assert not tampered.verify()


def test_replay_window_tolerates_reordering_but_not_repeats():
    guard = ReplayGuard(window=4)
    s, k = SID_A, plain_pubkey(key(0))
    for c in (10, 12, 11):
        guard.check_and_record(s, k, c)
    for c in (10, 11, 12):
        with pytest.raises(ReplayedMessage):
            guard.check_and_record(s, k, c)
    guard.check_and_record(s, k, 20)
    with pytest.raises(ReplayedMessage):
        guard.check_and_record(s, k, 15)                # older than the window
    guard.check_and_record(SID_B, k, 10)                # other session: own stream


def test_counters_are_consecutive_per_session_and_above_a_previous_process():
    first = CounterSource()
    a = [first.next(SID_A) for _ in range(100)]
    b = [first.next(SID_B) for _ in range(3)]
    assert a == list(range(a[0], a[0] + 100))          # one stream counts messages, by one
    assert b == list(range(b[0], b[0] + 3))            # another session: its own stream
    time.sleep(0.001)        # a restart takes longer than a microsecond per message sent
    assert CounterSource().next(SID_A) > a[-1]         # a restart starts above earlier runs


async def test_messages_sealed_apart_in_time_may_arrive_in_any_order(pair):
    """Regression (issue 14, item 1): counters were wall-clock microseconds and the window
    256 of them, so two messages sealed 2 ms apart and delivered in the other order (they
    are handled concurrently, and the old client pool could even put them on the wire in
    that order) made the second a "replay". The window now counts messages."""
    alice, bob = pair
    older = alice.t.seal(MsgType.JOIN, SID_A, b"{}")
    await asyncio.sleep(0.002)
    newer = alice.t.seal(MsgType.NONCE, SID_A, b"{}")
    await alice.t.send(bob.t.endpoint, newer)
    await alice.t.send(bob.t.endpoint, older)
    assert [e.msg_type for e in bob.inbox] == [MsgType.NONCE, MsgType.JOIN]
    assert bob.t.refusals == {}


async def test_delivery_and_replay_refused_over_sockets(pair):
    alice, bob = pair
    env = alice.t.seal(MsgType.JOIN, SID_A, b"{}")
    await alice.t.send(bob.t.endpoint, env)
    assert [e.body for e in bob.inbox] == [b"{}"] and bob.inbox[0].sender == alice.t.pubkey
    with pytest.raises(PeerRefused, match="ReplayedMessage"):
        await alice.t.send(bob.t.endpoint, env)
    assert len(bob.inbox) == 1
    # Anyone who saw the message can resend it: a replay is not charged to alice's key.
    assert bob.t.scores.invalid_count(alice.t.pubkey) == 0


async def test_forged_and_cross_session_messages_refused(pair):
    alice, bob = pair
    mallory = key(7)
    # Claims to come from alice but is signed by someone else.
    forged = Envelope.sign(mallory, msg_type=MsgType.JOIN, session_id=SID_A,
                           sender=alice.t.pubkey, counter=5, body=b"{}", chain=REGTEST)
    with pytest.raises(PeerRefused, match="BadSignature"):
        await alice.t.pool.request(bob.t.endpoint, C.RPC_MESSAGE, [forged.encode().hex()])
    # A genuine message of session A moved into session B.
    env = alice.t.seal(MsgType.NONCE, SID_A, b"{}")
    moved = Envelope(env.msg_type, SID_B, env.sender, env.counter, env.time_ms, env.body,
                     env.signature, env.chain_id)
    with pytest.raises(PeerRefused, match="BadSignature"):
        await alice.t.send(bob.t.endpoint, moved)
    # ... and relabelled as another message type.
    relabelled = Envelope(MsgType.FINAL, SID_A, env.sender, env.counter, env.time_ms, env.body,
                          env.signature, env.chain_id)
    with pytest.raises(PeerRefused, match="BadSignature"):
        await alice.t.send(bob.t.endpoint, relabelled)
    assert bob.inbox == []
    # Forgeries are not charged to the key they name (that would let anyone block alice).
    assert bob.t.scores.invalid_count(alice.t.pubkey) == 0
    assert bob.t.refusals["BadSignature"] == 3


async def test_non_participant_and_unknown_session_refused(pair):
    alice, bob = pair
    carol = Transport(key(2), alice.t.config, membership=alice.members.get,
                      on_envelope=alice._on_env, on_request=alice._on_req, chain=REGTEST)
    await carol.start("127.0.0.1", 0)
    try:
        with pytest.raises(PeerRefused, match="NotAParticipant"):
            await carol.send(bob.t.endpoint, carol.seal(MsgType.JOIN, SID_A, b"{}"))
        with pytest.raises(PeerRefused, match="UnknownSession"):
            await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, bytes(32), b"{}"))
    finally:
        await carol.stop()
    assert bob.inbox == []


async def test_stale_timestamp_refused(pair):
    alice, bob = pair
    old = Envelope.sign(key(0), msg_type=MsgType.JOIN, session_id=SID_A, sender=alice.t.pubkey,
                        counter=99, body=b"{}", time_ms=1_000_000, chain=REGTEST)
    with pytest.raises(PeerRefused, match="StaleMessage"):
        await alice.t.send(bob.t.endpoint, old)
    assert bob.inbox == []


async def test_peer_blocked_after_repeated_invalid_messages(pair):
    alice, bob = pair
    env = alice.t.seal(MsgType.JOIN, SID_A, b"{}")
    await alice.t.send(bob.t.endpoint, env)
    for _ in range(4):                                   # threshold is 4 in this fixture
        with pytest.raises(PeerRefused, match="InvalidBody"):
            await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, BAD_BODY))
    assert bob.t.scores.is_blocked(alice.t.pubkey)
    # Now even a fresh, valid message from alice is refused.
    with pytest.raises(PeerRefused, match="PeerBlocked"):
        await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
    assert len(bob.inbox) == 1


async def test_connection_closed_after_repeated_junk(pair):
    alice, bob = pair
    for i in range(3):
        with pytest.raises(PeerRefused):
            await alice.t.pool.request(bob.t.endpoint, C.RPC_MESSAGE, ["zz"])
    # The 4th junk message gets its refusal and then the server hangs up.
    with pytest.raises((PeerRefused, PeerUnreachable)):
        await alice.t.pool.request(bob.t.endpoint, C.RPC_MESSAGE, ["zz"])
    await asyncio.sleep(0.1)
    assert not bob.t._inbound or all(s.is_closing() for s in bob.t._inbound)
    # A new connection works again (junk is charged per connection, not per host).
    await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
    assert len(bob.inbox) == 1


async def test_rate_limit_per_connection():
    cfg = Musig2Config().with_(peer_burst=5, peer_rate_per_sec=0.5)
    alice_pk, bob_pk = plain_pubkey(key(0)), plain_pubkey(key(1))
    members = {SID_A: {alice_pk, bob_pk}}
    alice, bob = Peer(key(0), cfg, members), Peer(key(1), cfg, members)
    await alice.t.start()
    await bob.t.start()
    try:
        for _ in range(5):
            await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
        with pytest.raises(PeerRefused, match="rate limit"):
            await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
        assert len(bob.inbox) == 5
    finally:
        await alice.t.stop()
        await bob.t.stop()


async def test_oversized_message_dropped_and_server_survives():
    cfg = Musig2Config().with_(max_message_bytes=4096, max_payload_bytes=1024,
                               request_timeout=0.5)
    alice_pk, bob_pk = plain_pubkey(key(0)), plain_pubkey(key(1))
    members = {SID_A: {alice_pk, bob_pk}}
    alice, bob = Peer(key(0), cfg, members), Peer(key(1), cfg, members)
    await alice.t.start()
    await bob.t.start()
    try:
        big = alice.t.seal(MsgType.JOIN, SID_A, b"x" * 5000)
        # Refused by the size check, or dropped by the bounded framer (then no answer).
        with pytest.raises((PeerRefused, PeerUnreachable)):
            await alice.t.send(bob.t.endpoint, big)
        assert bob.inbox == []
        await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
        assert len(bob.inbox) == 1
    finally:
        await alice.t.stop()
        await bob.t.stop()


async def test_signing_request_push_and_refusal(pair):
    alice, bob = pair
    await alice.t.push_request(bob.t.endpoint, b"a record")
    assert bob.requests == [b"a record"]
    with pytest.raises(PeerRefused, match="signing request refused"):
        await alice.t.push_request(bob.t.endpoint, b"bad record")
    assert bob.requests == [b"a record"]


async def test_unreachable_peer_is_a_typed_error():
    cfg = Musig2Config().with_(connect_timeout=1.0)
    members = {SID_A: {plain_pubkey(key(0))}}
    alice = Peer(key(0), cfg, members)
    await alice.t.start()
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    try:
        with pytest.raises(PeerUnreachable):
            await alice.t.send(("127.0.0.1", port), alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
    finally:
        await alice.t.stop()


async def test_unknown_method_refused(pair):
    alice, bob = pair
    with pytest.raises(PeerRefused):
        await alice.t.pool.request(bob.t.endpoint, "m2.shell", ["00"])
    with pytest.raises(PeerRefused):
        await alice.t.pool.request(bob.t.endpoint, C.RPC_MESSAGE, [1, 2])


async def test_default_config_blocks_after_ten_invalid_messages():
    cfg = Musig2Config()
    assert cfg.block_after_invalid == 10
    alice_pk, bob_pk = plain_pubkey(key(0)), plain_pubkey(key(1))
    members = {SID_A: {alice_pk, bob_pk}}
    alice, bob = Peer(key(0), cfg, members), Peer(key(1), cfg, members)
    await alice.t.start()
    await bob.t.start()
    try:
        env = alice.t.seal(MsgType.JOIN, SID_A, b"{}")
        await alice.t.send(bob.t.endpoint, env)
        for i in range(10):
            assert not bob.t.scores.is_blocked(alice.t.pubkey)
            with pytest.raises(PeerRefused, match="InvalidBody"):
                await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, BAD_BODY))
        assert bob.t.scores.is_blocked(alice.t.pubkey)
        with pytest.raises(PeerRefused, match="PeerBlocked"):
            await alice.t.send(bob.t.endpoint, alice.t.seal(MsgType.JOIN, SID_A, b"{}"))
    finally:
        await alice.t.stop()
        await bob.t.stop()


async def test_sends_to_one_peer_reach_it_in_the_order_they_were_made():
    """Regression (issue 14, item 1): while the first sends to a peer waited for the
    connection set-up lock, a later send found the fresh connection and went first (a JOIN
    reached the wire 420 ms after a READY sealed 62 ms later). The connection here goes
    through a 20 ms delaying proxy so set-up is slow, and sends keep coming while it is
    made and while the queued ones drain: Bob must see them in exactly the sealed order."""
    from tests.harness.delay_proxy import DelayProxy
    cfg = Musig2Config()
    members = {SID_A: {plain_pubkey(key(0)), plain_pubkey(key(1))}}
    alice, bob = Peer(key(0), cfg, members), Peer(key(1), cfg, members)
    await alice.t.start()
    await bob.t.start()
    try:
        async with DelayProxy(bob.t.endpoint, delay=0.02) as proxy:
            sealed, tasks = [], []

            def send_one() -> None:
                env = alice.t.seal(MsgType.JOIN, SID_A, b"{}")
                sealed.append(env.counter)
                tasks.append(asyncio.ensure_future(alice.t.send(proxy.endpoint, env)))

            for _ in range(100):            # these queue up behind the slow connect
                send_one()
            while proxy.endpoint not in alice.t.pool._sessions:
                send_one()
                await asyncio.sleep(0.001)
            for _ in range(100):            # one per loop turn while the queue drains
                send_one()
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
            assert proxy.connections == 1
        assert [e.counter for e in bob.inbox] == sealed
        assert bob.t.refusals == {}
    finally:
        await alice.t.stop()
        await bob.t.stop()
