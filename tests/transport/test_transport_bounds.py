"""Resource bounds of the transport against unauthenticated peers (security review).

aiorpcx spawns one task per incoming JSON-RPC request before any of our checks
run. These tests drive real sockets on 127.0.0.1 with raw bytes (what an
attacker would send, no client library) and measure the tasks the receiving
side holds: a batch or a pipelined flood must not turn into thousands of tasks.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.transport import PeerUnreachable, Transport

CFG = Musig2Config().with_(request_timeout=1.5, connect_timeout=2.0)


async def _noop(*_x) -> None:
    return None


def _request(i: int, method: bytes = b"m2.msg") -> bytes:
    return b'{"jsonrpc":"2.0","method":"%s","params":["00"],"id":%d}' % (method, i)


async def _peak_tasks(seconds: float) -> int:
    """Largest number of live tasks seen while the peer's bytes are processed."""
    peak = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        peak = max(peak, len(asyncio.all_tasks()))
        await asyncio.sleep(0.005)
    return peak


@pytest.fixture
async def server():
    t = Transport(os.urandom(32), CFG, membership=lambda sid: None, on_envelope=_noop,
                  on_request=_noop, chain=REGTEST)
    await t.start("127.0.0.1", 0)
    yield t
    await t.stop()


async def test_a_jsonrpc_batch_is_refused_without_spawning_its_requests(server):
    baseline = len(asyncio.all_tasks())
    reader, writer = await asyncio.open_connection(*server.endpoint)
    batch = b"[" + b",".join(_request(i) for i in range(4000)) + b"]\n"
    assert len(batch) < CFG.max_message_bytes          # one legal-sized frame
    writer.write(batch)
    await writer.drain()
    peak = await _peak_tasks(0.4)
    assert peak - baseline < 50, f"{peak - baseline} tasks for one batch"
    # ... and the connection is closed by the server.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_pipelined_requests_beyond_the_pending_bound_close_the_connection(server):
    baseline = len(asyncio.all_tasks())
    reader, writer = await asyncio.open_connection(*server.endpoint)
    writer.write(b"".join(_request(i) + b"\n" for i in range(3000)))
    await writer.drain()
    peak = await _peak_tasks(0.4)
    assert peak - baseline <= CFG.max_pending_per_peer + 20
    data = await asyncio.wait_for(reader.read(), 5)     # some refusals, then EOF
    assert data.count(b"\n") <= CFG.max_pending_per_peer
    writer.close()


async def test_the_server_still_serves_honest_peers_after_a_flood(server):
    _r, writer = await asyncio.open_connection(*server.endpoint)
    writer.write(b"[" + b",".join(_request(i) for i in range(1000)) + b"]\n")
    await writer.drain()
    writer.close()
    client = Transport(os.urandom(32), CFG, membership=lambda sid: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        assert await client.pool.request(server.endpoint, "m2.request", ["00"]) is True
    finally:
        await client.stop()


async def test_a_server_cannot_flood_our_outbound_connection_with_requests():
    """A hostile peer's server answers our connection with a batch of requests of its own:
    we neither process nor answer them, and we hang up at once (not after the timeout)."""
    received: list[bytes] = []

    async def hostile(reader, writer):
        writer.write(b"[" + b",".join(_request(i, b"x") for i in range(4000)) + b"]\n")
        await writer.drain()
        try:
            while chunk := await reader.read(65536):
                received.append(chunk)
        except ConnectionError:
            pass
        writer.close()

    srv = await asyncio.start_server(hostile, "127.0.0.1", 0)
    endpoint = srv.sockets[0].getsockname()[:2]
    client = Transport(os.urandom(32), CFG, membership=lambda sid: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PeerUnreachable):
            await client.pool.request(endpoint, "m2.msg", ["00"])
        assert loop.time() - started < CFG.request_timeout
        await asyncio.sleep(0.2)
        replies = b"".join(received).count(b'"result"') + b"".join(received).count(b'"error"')
        assert replies == 0, f"we answered {replies} of the hostile peer's requests"
    finally:
        await client.stop()
        srv.close()
        await srv.wait_closed()


def test_the_blocklist_is_bounded():
    """Keys cost nothing: a stream of keys that each earn a block must not grow the
    blocklist without limit (expired blocks go first, then the oldest)."""
    from musig2_plugin.transport import PeerScore
    scores = PeerScore(threshold=1, duration=3600.0, max_keys=100)
    keys = [i.to_bytes(33, "big") for i in range(1000)]
    for k in keys:
        assert scores.charge(k) is True
    assert scores.blocked_count <= 100
    assert scores.is_blocked(keys[-1]) and not scores.is_blocked(keys[0])


async def test_messages_under_a_blocked_key_are_not_charged_to_it_but_to_the_connection():
    """The signature is checked before the blocklist: a forgery naming a blocked key is
    junk (BadSignature) that proves nothing about that key, so it must not extend its
    record; the connection that sends such messages is charged and closed. A message the
    blocked key really signed is refused (PeerBlocked) without charging its connection."""
    from musig2_plugin.foundation import constants as C
    from musig2_plugin.crypto import plain_pubkey
    from musig2_plugin.transport import Envelope, MsgType, PeerRefused
    cfg = CFG.with_(block_after_invalid=3)
    victim_sk = os.urandom(32)
    victim = plain_pubkey(victim_sk)
    sid = bytes(32)
    srv = Transport(os.urandom(32), cfg, membership=lambda s: {victim}, on_envelope=_noop,
                    on_request=_noop, chain=REGTEST)
    await srv.start("127.0.0.1", 0)
    attacker = Transport(os.urandom(32), cfg, membership=lambda s: None, on_envelope=_noop,
                         on_request=_noop, chain=REGTEST)
    blocked = Transport(victim_sk, cfg, membership=lambda s: None, on_envelope=_noop,
                        on_request=_noop, chain=REGTEST)
    try:
        for _ in range(3):
            srv.scores.charge(victim)
        assert srv.scores.is_blocked(victim)
        before = srv.scores.invalid_count(victim)
        for i in range(4):
            with pytest.raises(PeerRefused, match="PeerBlocked"):
                await blocked.send(srv.endpoint, blocked.seal(MsgType.JOIN, sid, b"{}"))
        assert srv.scores.invalid_count(victim) == before
        assert all(s.invalid_messages == 0 for s in srv._inbound)
        forged = Envelope.sign(os.urandom(32), msg_type=MsgType.JOIN, session_id=sid,
                               sender=victim, counter=1, body=b"{}", chain=REGTEST)
        for _ in range(2):
            with pytest.raises(PeerRefused, match="BadSignature"):
                await attacker.pool.request(srv.endpoint, C.RPC_MESSAGE, [forged.encode().hex()])
        assert srv.scores.invalid_count(victim) == before
        with pytest.raises((PeerRefused, PeerUnreachable)):      # third: refused, then closed
            await attacker.pool.request(srv.endpoint, C.RPC_MESSAGE, [forged.encode().hex()])
        await asyncio.sleep(0.1)
        assert [s.is_closing() for s in srv._inbound].count(True) <= 1
        assert len([s for s in srv._inbound if not s.is_closing()]) == 1   # blocked key's
    finally:
        await blocked.stop()
        await attacker.stop()
        await srv.stop()


async def test_outbound_connections_and_their_locks_are_bounded():
    """Endpoints come from peers; the pool keeps at most max_outbound_connections idle
    connections (and no lock for an endpoint it no longer holds)."""
    cfg = CFG.with_(max_outbound_connections=2)
    servers = []
    for _ in range(5):
        t = Transport(os.urandom(32), CFG, membership=lambda s: None, on_envelope=_noop,
                      on_request=_noop, chain=REGTEST)
        await t.start("127.0.0.1", 0)
        servers.append(t)
    client = Transport(os.urandom(32), cfg, membership=lambda s: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        for t in servers:
            assert await client.pool.request(t.endpoint, "m2.request", ["00"]) is True
        assert client.pool.open_connections == 2
        assert len(client.pool._locks) <= 2
        await asyncio.sleep(0.3)
        assert sum(len(t._inbound) for t in servers) == 2      # the others were closed
        # An evicted peer is simply reconnected on next use.
        assert await client.pool.request(servers[0].endpoint, "m2.request", ["00"]) is True
    finally:
        await client.stop()
        for t in servers:
            await t.stop()


async def test_push_refused_by_admission_is_a_rate_refusal_that_closes_nothing():
    """The handler's budget refusal (transport/admission.py) reaches the pusher as a typed
    refusal, costs the connection nothing (the push was verified), and the same connection
    goes on carrying pushes that are within budget."""
    from musig2_plugin.transport import PeerRefused, PushRefused
    handled: list[bytes] = []

    async def on_request(data: bytes, source: str) -> None:
        if data.startswith(b"over"):
            raise PushRefused("push rate exceeded")
        handled.append(data)

    srv = Transport(os.urandom(32), CFG.with_(block_after_invalid=2),
                    membership=lambda s: None, on_envelope=_noop, on_request=on_request,
                    chain=REGTEST)
    await srv.start("127.0.0.1", 0)
    client = Transport(os.urandom(32), CFG, membership=lambda s: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        for i in range(5):                 # more than block_after_invalid: never disconnected
            with pytest.raises(PeerRefused, match="rate exceeded"):
                await client.push_request(srv.endpoint, b"over%d" % i)
            await client.push_request(srv.endpoint, b"ok%d" % i)
        assert handled == [b"ok%d" % i for i in range(5)]
        assert srv.refusals == {"PushRefused": 5}
        assert all(s.invalid_messages == 0 for s in srv._inbound)
    finally:
        await client.stop()
        await srv.stop()


async def test_replaying_someones_messages_cannot_get_them_blocked():
    """Mallory saw one of Alice's signed messages (a co-participant, or anyone on the path:
    the transport is plain TCP) and sends it to Bob again and again, then an old one of
    Alice's (stale). Neither proves anything against Alice's key: Alice stays unblocked,
    the refusals are counted against her key for observation only, and the delivering
    connection is not closed either (it might merely relay; issue 14, item 1)."""
    from musig2_plugin.crypto import plain_pubkey
    from musig2_plugin.transport import Envelope, MsgType, PeerRefused
    from musig2_plugin.foundation import constants as C
    cfg = CFG.with_(block_after_invalid=3)
    alice_sk = os.urandom(32)
    alice = plain_pubkey(alice_sk)
    sid = bytes(32)
    inbox: list = []

    async def on_env(env) -> None:
        inbox.append(env)

    bob = Transport(os.urandom(32), cfg, membership=lambda s: {alice}, on_envelope=on_env,
                    on_request=_noop, chain=REGTEST)
    await bob.start("127.0.0.1", 0)
    mallory = Transport(os.urandom(32), cfg, membership=lambda s: None, on_envelope=_noop,
                        on_request=_noop, chain=REGTEST)
    honest = Transport(alice_sk, cfg, membership=lambda s: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        seen = Envelope.sign(alice_sk, msg_type=MsgType.JOIN, session_id=sid, sender=alice,
                             counter=10, body=b"{}", chain=REGTEST)
        old = Envelope.sign(alice_sk, msg_type=MsgType.JOIN, session_id=sid, sender=alice,
                            counter=11, body=b"{}", time_ms=1_000_000, chain=REGTEST)
        await mallory.pool.request(bob.endpoint, C.RPC_MESSAGE, [seen.encode().hex()])
        for data, why in [(seen, "ReplayedMessage"), (old, "StaleMessage"),
                          (seen, "ReplayedMessage"), (seen, "ReplayedMessage")]:
            with pytest.raises(PeerRefused, match=why):
                await mallory.pool.request(bob.endpoint, C.RPC_MESSAGE, [data.encode().hex()])
        assert bob.scores.invalid_count(alice) == 0 and not bob.scores.is_blocked(alice)
        assert bob.replays[alice] == 4
        assert len(bob._inbound) == 1 and not any(s.is_closing() for s in bob._inbound)
        assert all(s.invalid_messages == 0 for s in bob._inbound)
        await honest.send(bob.endpoint, honest.seal(MsgType.JOIN, sid, b"{}"))
        assert len(inbox) == 2
    finally:
        await honest.stop()
        await mallory.stop()
        await bob.stop()


async def test_silent_connections_cannot_lock_honest_peers_out():
    """Open the maximum number of inbound connections and say nothing (slowloris). An
    honest peer connecting afterwards must still be served; the longest-silent squatter
    is the one closed."""
    from musig2_plugin.transport import PeerUnreachable
    cfg = CFG.with_(max_inbound_connections=3)
    srv = Transport(os.urandom(32), cfg, membership=lambda s: None, on_envelope=_noop,
                    on_request=_noop, chain=REGTEST)
    await srv.start("127.0.0.1", 0)
    squatters = [await asyncio.open_connection(*srv.endpoint) for _ in range(3)]
    client = Transport(os.urandom(32), CFG, membership=lambda s: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        await asyncio.sleep(0.1)
        assert len(srv._inbound) == 3
        try:
            answer = await client.pool.request(srv.endpoint, "m2.request", ["00"])
        except PeerUnreachable:
            answer = None
        assert answer is True
        assert await asyncio.wait_for(squatters[0][0].read(), 5) == b""   # oldest closed
        assert len(srv._inbound) <= 3
    finally:
        for _r, w in squatters:
            w.close()
        await client.stop()
        await srv.stop()


async def test_junk_has_a_small_node_wide_budget_honest_traffic_never_spends():
    """Unauthenticated traffic (here: bytes that are no envelope) costs each connection one
    of its ``block_after_invalid``; once the node-wide junk budget is spent, a connection is
    closed at its first junk message, so reconnecting after every nine buys nothing. Signed
    traffic never spends the budget and still flows."""
    from musig2_plugin.foundation import constants as C
    from musig2_plugin.crypto import plain_pubkey
    from musig2_plugin.transport import MsgType, PeerRefused
    cfg = CFG.with_(junk_burst=3, junk_rate_per_sec=0.001)
    honest_sk = os.urandom(32)
    inbox: list = []

    async def on_env(env) -> None:
        inbox.append(env)

    srv = Transport(os.urandom(32), cfg, membership=lambda s: {plain_pubkey(honest_sk)},
                    on_envelope=on_env, on_request=_noop, chain=REGTEST)
    await srv.start("127.0.0.1", 0)
    clients = [Transport(os.urandom(32), CFG, membership=lambda s: None, on_envelope=_noop,
                         on_request=_noop, chain=REGTEST) for _ in range(2)]
    honest = Transport(honest_sk, CFG, membership=lambda s: None, on_envelope=_noop,
                       on_request=_noop, chain=REGTEST)
    try:
        for _ in range(3):                                   # within the budget: refused only
            with pytest.raises(PeerRefused, match="Malformed"):
                await clients[0].pool.request(srv.endpoint, C.RPC_MESSAGE, ["00" * 40])
        await asyncio.sleep(0.05)
        assert len([s for s in srv._inbound if not s.is_closing()]) == 1
        with pytest.raises((PeerRefused, PeerUnreachable)):  # budget spent: first junk closes
            await clients[1].pool.request(srv.endpoint, C.RPC_MESSAGE, ["00" * 40])
        await asyncio.sleep(0.1)
        assert len([s for s in srv._inbound if not s.is_closing()]) == 1
        await honest.send(srv.endpoint, honest.seal(MsgType.JOIN, bytes(32), b"{}"))
        assert len(inbox) == 1
    finally:
        await honest.stop()
        for c in clients:
            await c.stop()
        await srv.stop()


def test_push_admission_budgets_by_signer_and_source():
    """transport/admission.py on its own: a known co-signer's budget is its own; strangers
    meet a per-key, a per-source-address and a shared budget, and a refused push spends no
    token of any of them."""
    from musig2_plugin.transport import PushAdmission, PushRefused
    cfg = CFG.with_(known_push_burst=3, known_push_rate_per_sec=0.001,
                    stranger_push_burst=2, stranger_push_rate_per_sec=0.001,
                    stranger_push_source_burst=3, stranger_push_source_rate_per_sec=0.001,
                    stranger_push_total_burst=5, stranger_push_total_rate_per_sec=0.001)
    known = {b"K"}
    adm = PushAdmission(cfg, lambda key: key in known)
    adm.admit(b"s1", "10.0.0.1")
    adm.admit(b"s1", "10.0.0.1")
    with pytest.raises(PushRefused):                 # per key
        adm.admit(b"s1", "10.0.0.1")
    adm.admit(b"s2", "10.0.0.1")
    with pytest.raises(PushRefused):                 # per source address (3 spent)
        adm.admit(b"s3", "10.0.0.1")
    adm.admit(b"s3", "10.0.0.2")                     # s3 spent nothing when refused
    adm.admit(b"s3", "10.0.0.3")
    with pytest.raises(PushRefused):                 # all strangers together (5 spent)
        adm.admit(b"s4", "10.0.0.4")
    for _ in range(3):                               # the co-signer: untouched by all that
        adm.admit(b"K", "10.0.0.1")
    with pytest.raises(PushRefused):                 # ... and bounded by its own budget
        adm.admit(b"K", "10.0.0.1")
    assert adm.counts == {"stranger": 5, "stranger-refused": 3, "known": 3,
                          "known-refused": 1}
