"""Security-review regressions of the session layer, on real nodes over 127.0.0.1.

Each test names the attack it defends against; see docs/security-review.md.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.session import Session, SessionAborted
from musig2_plugin.transport import MsgType, PeerRefused
from musig2_plugin.session.messages import encode_body

from session_cluster import FAST, WireLog, by_key, make_cluster, stop_all, until


async def test_sessions_created_by_strangers_cannot_block_a_session_we_join():
    """Anyone can push a request naming us and a key of their own, then JOIN it: each such
    JOIN makes a placeholder session here. Filling the table with them must not stop our
    user from joining (and completing) a request they approved."""
    cfg = FAST.with_(max_sessions=3)
    alice, bob = await make_cluster(2, config=cfg)
    mallory = Musig2Node(os.urandom(32), config=FAST, chain=REGTEST)     # her own table is not the point
    await mallory.start(dht=False)
    mallory.add_peer(bob.pubkey, bob.endpoint)
    bob.add_peer(mallory.pubkey, mallory.endpoint)
    try:
        for _ in range(cfg.max_sessions + 2):
            junk = await mallory.announce_signing_request([bob.pubkey, mallory.pubkey],
                                                          [os.urandom(32)])
            await mallory.join_signing_request(junk, auto=False)
        await until(lambda: len([s for s in bob.sessions.sessions.values()
                                 if not s.closed]) >= cfg.max_sessions, 10)
        assert all(not s.joined_local for s in bob.sessions.sessions.values())
        msg = os.urandom(32)
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [msg])
        (sid,) = await bob.join_signing_request(record)
        await alice.join_signing_request(record)
        sig = await bob.get_final_signature(sid, 15)
        assert schnorr_verify(Musig2Node.aggregate_key([alice.pubkey, bob.pubkey]).xonly(),
                              msg, sig)
        assert len([s for s in bob.sessions.sessions.values() if not s.closed]) \
            <= cfg.max_sessions
    finally:
        await mallory.stop()
        await stop_all([alice, bob])


async def test_a_requests_endpoint_hints_cannot_redirect_other_sessions():
    """Mallory's request names Carol with Mallory's own address as Carol's endpoint hint.
    Bob must not adopt it for Carol in general: a later honest session between Bob and
    Carol (Bob knows Carol only through that request's hints) reaches the real Carol."""
    alice, bob, carol = await make_cluster(3)
    mallory = Musig2Node(os.urandom(32), config=FAST, chain=REGTEST)
    await mallory.start(dht=False)
    # Bob knows nobody's endpoint but Alice's and Mallory's.
    bob.endpoints.clear()
    bob.add_peer(alice.pubkey, alice.endpoint)
    bob.add_peer(mallory.pubkey, mallory.endpoint)
    mallory.add_peer(bob.pubkey, bob.endpoint)
    mallory.add_peer(carol.pubkey, mallory.endpoint)          # the lie
    try:
        bait = await mallory.announce_signing_request(
            [bob.pubkey, carol.pubkey, mallory.pubkey], [os.urandom(32)])
        bait_spec = bob.requests[request_key(bait)].specs[0]
        assert bait_spec.endpoints[carol.pubkey] == mallory.endpoint   # the hint arrived
        assert bob.endpoints.get(carol.pubkey) is None                 # ... and stayed there
        msg = os.urandom(32)
        record = await alice.announce_signing_request([bob.pubkey, carol.pubkey], [msg])
        spec = bob.requests[request_key(record)].specs[0]
        assert spec.endpoints[carol.pubkey] == carol.endpoint
        (sid,) = await bob.join_signing_request(record)
        await carol.join_signing_request(record)
        sig = await bob.get_final_signature(sid, 15)
        assert schnorr_verify(spec.aggregate_xonly, msg, sig)
        assert bob.endpoints[carol.pubkey] == carol.endpoint
    finally:
        await mallory.stop()
        await stop_all([alice, bob, carol])


async def test_the_address_book_is_bounded():
    """Every pushed request teaches us its creator's endpoint, and keys are free: the book
    keeps at most max_known_endpoints entries (the newest)."""
    cfg = FAST.with_(max_known_endpoints=3)
    (bob,) = await make_cluster(1, config=cfg)
    creators = []
    try:
        for _ in range(6):
            c = Musig2Node(os.urandom(32), config=FAST, chain=REGTEST)
            await c.start(dht=False)
            c.add_peer(bob.pubkey, bob.endpoint)
            creators.append(c)
            await c.announce_signing_request([bob.pubkey, c.pubkey], [os.urandom(32)])
        assert len(bob.requests) == 6
        assert len(bob.endpoints) == 3
        assert list(bob.endpoints) == [c.pubkey for c in creators[-3:]]
    finally:
        await stop_all(creators + [bob])


async def _ready_session(n: int):
    nodes = await make_cluster(n)
    record = await nodes[0].announce_signing_request([x.pubkey for x in nodes], [os.urandom(32)])
    spec = nodes[0].requests[request_key(record)].specs[0]
    ids = await asyncio.gather(*(x.join_signing_request(record, auto=False) for x in nodes))
    sid = ids[0][0]
    await until(lambda: all(x.sessions.get(sid).status == "ready" for x in nodes), 10)
    return nodes, record, spec, sid


async def _finish(nodes, spec, sid):
    await asyncio.gather(*(x.start_round1(sid, 10) for x in nodes))
    sigs = await asyncio.gather(*(x.start_round2(sid, 10) for x in nodes))
    assert len(set(sigs)) == 1 and schnorr_verify(spec.aggregate_xonly, spec.message, sigs[0])


async def test_a_participant_cannot_claim_a_far_epoch_to_abort_or_restart_the_session():
    """Every key coordinates *some* epoch (order[e mod n]); only epochs a failover can reach
    (<= max_failovers and < n) may speak as coordinator. Otherwise any participant could
    abort the session naming whoever it likes, or take it over with a READY."""
    nodes, record, spec, sid = await _ready_session(3)
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        mallory = next(x for x in nodes if x is not coord)
        target = next(x for x in nodes if x is not coord and x is not mallory)
        far = next(e for e in range(FAST.max_failovers + 1, 100)
                   if spec.coordinator(e) == mallory.pubkey)
        abort = encode_body(MsgType.ABORT, epoch=far, attempt=0, reason="framed",
                            culprits=[target.pubkey])
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await mallory.transport.send(target.endpoint,
                                         mallory.transport.seal(MsgType.ABORT, sid, abort))
        ready = encode_body(MsgType.READY, epoch=far, attempt=5)
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await mallory.transport.send(target.endpoint,
                                         mallory.transport.seal(MsgType.READY, sid, ready))
        s = target.sessions.get(sid)
        assert not s.closed and s.epoch == 0 and s.attempt == 0
        await _finish(nodes, spec, sid)
    finally:
        await stop_all(nodes)


async def test_an_abort_naming_a_non_participant_is_refused():
    """Blame is recorded (the edge keeps reputation from it): a coordinator may only name
    participants of the session, never an outsider's key."""
    nodes, record, spec, sid = await _ready_session(3)
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        target = next(x for x in nodes if x is not coord)
        outsider = bytes.fromhex("02" + "11" * 32)
        abort = encode_body(MsgType.ABORT, epoch=0, attempt=0, reason="framed",
                            culprits=[outsider])
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await coord.transport.send(target.endpoint,
                                       coord.transport.seal(MsgType.ABORT, sid, abort))
        assert not target.sessions.get(sid).closed
        await _finish(nodes, spec, sid)
    finally:
        await stop_all(nodes)


async def test_a_refused_join_changes_nothing():
    """A JOIN refused for its epoch must not first overwrite the sender's endpoint or count
    it as joined (bad input changes nothing)."""
    nodes = await make_cluster(3)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        spec = nodes[0].requests[request_key(record)].specs[0]
        sender, target = nodes[1], nodes[2]
        (sid,) = await target.join_signing_request(record, auto=False)
        session = target.sessions.get(sid)
        joined_before = set(session._seen_joined)
        body = encode_body(MsgType.JOIN, epoch=FAST.max_failovers + 1, last_attempt=-1,
                           fresh=False, endpoint=["127.0.0.1", 9])
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await sender.transport.send(target.endpoint,
                                        sender.transport.seal(MsgType.JOIN, sid, body))
        assert target.endpoints[sender.pubkey] == sender.endpoint
        assert session._seen_joined == joined_before and sender.pubkey not in joined_before
        assert spec.session_id == sid
    finally:
        await stop_all(nodes)


async def test_a_second_aggregate_nonce_for_the_same_attempt_is_never_signed():
    """The classic MuSig2 attack: after a participant has its aggregate nonce, the coordinator
    sends another one for the same attempt (here: one other nonce swapped, the aggregate
    recomputed so every check a naive participant makes would pass). The participant signs
    exactly once, under the first aggregate, before and after that second NONCES."""
    from musig2_plugin.crypto import SigningSession, nonce_agg, nonce_gen
    nodes, record, spec, sid = await _ready_session(3)
    log = WireLog()
    for x in nodes:
        log.attach(x)
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        p = next(x for x in nodes if x is not coord)
        q = next(x for x in nodes if x is not coord and x is not p)
        aggs = await asyncio.gather(*(x.start_round1(sid, 10) for x in nodes))
        first = p.sessions.get(sid)._pubnonces
        evil = list(first)
        evil[spec.signer_index_of(q.pubkey)] = nonce_gen(pubkey=q.pubkey)[1]
        body = encode_body(MsgType.NONCES, epoch=0, attempt=0, pubnonces=evil,
                           aggnonce=nonce_agg(evil))
        await coord.transport.send(p.endpoint, coord.transport.seal(MsgType.NONCES, sid, body))
        results = await asyncio.gather(p.start_round2(sid, 10), p.start_round2(sid, 10),
                                       *(x.start_round2(sid, 10) for x in nodes if x is not p))
        assert len(set(results)) == 1
        # A second NONCES after signing, and a third round 2: still nothing signed again.
        await coord.transport.send(p.endpoint, coord.transport.seal(MsgType.NONCES, sid, body))
        await p.start_round2(sid, 10)
        mine = [ps for s, _a, ps in log.psigs if s == p.pubkey]
        assert len(mine) == 1
        session = SigningSession(spec.keyagg, aggs[0], spec.message)
        assert session.partial_sig_verify(mine[0], first[spec.signer_index_of(p.pubkey)],
                                          spec.signer_index_of(p.pubkey))
        assert p.sessions.get(sid)._secnonce is None
    finally:
        await stop_all(nodes)


async def test_a_coordinator_cannot_restart_round1_for_ever():
    """Every READY costs a participant a fresh nonce and a message; honest coordinators stop
    at max_attempts per epoch, so a participant stops following one far beyond that."""
    cfg = FAST.with_(max_attempts=2, max_failovers=1)
    nodes = await make_cluster(3, config=cfg)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        spec = nodes[0].requests[request_key(record)].specs[0]
        ids = await asyncio.gather(*(x.join_signing_request(record, auto=False) for x in nodes))
        sid = ids[0][0]
        coord = by_key(nodes)[spec.coordinator(0)]
        p = next(x for x in nodes if x is not coord)
        await until(lambda: p.sessions.get(sid).status == "ready", 10)
        for attempt in range(1, 10):
            body = encode_body(MsgType.READY, epoch=0, attempt=attempt)
            await coord.transport.send(p.endpoint, coord.transport.seal(MsgType.READY, sid, body))
        s = p.sessions.get(sid)
        assert s.closed and s.culprits == (coord.pubkey,)
        assert "too many attempts" in s.abort_reason
        assert s.attempts_seen == cfg.max_attempts * (cfg.max_failovers + 1)
    finally:
        await stop_all(nodes)


def _record(creator_sk: bytes, keys, msgs, rid: bytes, tweak: str, endpoint):
    from musig2_plugin.coordinator.node import _encryption_context
    from musig2_plugin.coordinator.payload import RequestPayload
    from musig2_plugin.crypto import key_sort, plain_pubkey
    from musig2_plugin.coordinator.payload_crypto import encrypt_payload
    from musig2_plugin.records import SigningRequest
    keys = key_sort(list(keys))
    blob = encrypt_payload(RequestPayload(tweak, None, {}, b"").encode(), keys,
                           _encryption_context(rid, plain_pubkey(creator_sk), msgs))
    return SigningRequest.create(creator_sk, keys=keys, messages=msgs, payload=blob,
                                 request_id=rid, host=endpoint[0], port=endpoint[1], chain=REGTEST)


async def test_a_second_record_with_the_same_id_cannot_swap_what_a_session_signs():
    """The session id binds creator, request id and messages, not the tweak (it is in the
    encrypted payload). Once the first record is forgotten (request spam), a second record
    of the same id with another tweak must not be approved on its own payload while the
    session built from the first one runs: it is refused."""
    from musig2_plugin.coordinator import RequestRefused
    from musig2_plugin.session.spec import TWEAK_NONE, TWEAK_TAPROOT
    cfg = FAST.with_(max_known_requests=1)
    (bob,) = await make_cluster(1, config=cfg)
    mallory = Musig2Node(os.urandom(32), config=FAST, chain=REGTEST)
    await mallory.start(dht=False)
    try:
        keys, msgs, rid = [bob.pubkey, mallory.pubkey], [os.urandom(32)], os.urandom(32)
        first = _record(mallory._seckey, keys, msgs, rid, TWEAK_TAPROOT, mallory.endpoint)
        await mallory.transport.push_request(bob.endpoint, first.encode())
        mallory.add_peer(bob.pubkey, bob.endpoint)
        (sid,) = await mallory.join_signing_request(first, auto=False)
        await until(lambda: bob.sessions.get(sid) is not None, 10)   # bob's placeholder
        await mallory.transport.push_request(bob.endpoint, _record(
            mallory._seckey, keys, [os.urandom(32)], os.urandom(32), TWEAK_TAPROOT,
            mallory.endpoint).encode())                       # evicts the first record
        assert request_key(first) not in bob.requests
        second = _record(mallory._seckey, keys, msgs, rid, TWEAK_NONE, mallory.endpoint)
        assert request_key(second) == request_key(first)
        with pytest.raises(PeerRefused, match="conflicts"):
            await mallory.transport.push_request(bob.endpoint, second.encode())
        with pytest.raises(RequestRefused, match="conflicts"):
            await bob.join_signing_request(second)
        placeholder = bob.sessions.get(sid)
        assert placeholder.spec.tweak == TWEAK_TAPROOT and not placeholder.joined_local
    finally:
        await mallory.stop()
        await stop_all([bob])


class FaultySigner(Session):
    """A strict fake of a hardware/library fault: partial signing fails after the nonce was
    handed to the library (so it is consumed), as libsecp's own self-check would report."""

    def _make_partial_sig(self) -> bytes:
        from musig2_plugin.crypto import LibraryRefusal
        self._secnonce.discard()
        self._secnonce = None
        raise LibraryRefusal("simulated fault in partial signing")


async def test_a_local_signing_fault_aborts_cleanly_without_stray_task_errors():
    """A failure inside our own round 2 (here at the coordinator, reached through the local
    delivery of its own NONCES) must end the session naming us, at once, and leave no task
    whose exception nobody retrieves."""
    import gc
    loop = asyncio.get_running_loop()
    stray: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: stray.append(ctx))
    nodes = await make_cluster(3, config=FAST.with_(round_timeout=30))
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        spec = nodes[0].requests[request_key(record)].specs[0]
        coord = by_key(nodes)[spec.coordinator(0)]
        coord.sessions.session_class = FaultySigner
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        for x in nodes:          # round_timeout is 30 s: only an immediate abort passes
            with pytest.raises(SessionAborted) as info:
                await x.get_final_signature(ids[0][0], 10)
            # The coordinator knows its own fault; the others only hear its claim.
            assert info.value.culprits == ((coord.pubkey,) if x is coord else ())
            assert info.value.reported == (() if x is coord else (coord.pubkey,))
            assert "partial signature" in info.value.reason
        await asyncio.sleep(0.2)
        gc.collect()
        await asyncio.sleep(0)
        assert [c.get("message") for c in stray] == []
    finally:
        loop.set_exception_handler(previous)
        await stop_all(nodes)


async def test_a_deeply_nested_body_is_a_typed_refusal_charged_to_its_signer():
    """json.loads raises RecursionError (not ValueError) on deep nesting: it must be the
    sender's BadBody like any other malformed body, not an 'unexpected error' with a
    traceback in our log for every such message."""
    import logging
    nodes = await make_cluster(2)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        sid = nodes[0].requests[request_key(record)].specs[0].session_id
        a, b = nodes
        body = b"[" * 30000 + b"]" * 30000
        with pytest.raises(PeerRefused, match="BadBody"):
            await a.transport.send(b.endpoint, a.transport.seal(MsgType.JOIN, sid, body))
        assert b.transport.scores.invalid_count(a.pubkey) == 1
        assert b.sessions.get(sid) is None          # no placeholder left by a refused body
    finally:
        await stop_all(nodes)


async def test_a_request_is_joined_whole_or_not_at_all():
    """One session per input: if only some of a request's sessions fit the session bound,
    joining must refuse before any of them starts (half the inputs signed is useless state
    and nonces spent for nothing)."""
    from musig2_plugin.coordinator import CoordinatorError
    cfg = FAST.with_(max_sessions=3)
    alice, bob = await make_cluster(2, config=cfg)
    try:
        keys = [alice.pubkey, bob.pubkey]
        first = await alice.announce_signing_request(keys, [os.urandom(32), os.urandom(32)])
        await bob.join_signing_request(first, auto=False)
        second = await alice.announce_signing_request(keys, [os.urandom(32), os.urandom(32)])
        with pytest.raises(CoordinatorError, match="max_sessions"):
            await bob.join_signing_request(second, auto=False)
        second_ids = {s.session_id for s in bob.requests[request_key(second)].specs}
        assert not any(s.joined_local for sid, s in bob.sessions.sessions.items()
                       if sid in second_ids)
        # The first request is unharmed and completes.
        ids = await alice.join_signing_request(first)
        for sid in ids:
            await bob.start_round1(sid, 10)
            await bob.start_round2(sid, 10)
    finally:
        await stop_all([alice, bob])


async def test_coordinator_messages_cannot_make_an_unapproved_participant_sign():
    """The approval hook is the only way in: READY and NONCES sent to a node whose user
    refused the request reach a placeholder session that never produces a nonce or a
    partial signature."""
    from musig2_plugin.coordinator import ApprovalDenied
    from musig2_plugin.crypto import nonce_agg, nonce_gen

    async def deny(record, payload):
        return False

    alice = (await make_cluster(1))[0]
    bob = Musig2Node(os.urandom(32), config=FAST, approve=deny, chain=REGTEST)
    await bob.start(dht=False)
    alice.add_peer(bob.pubkey, bob.endpoint)
    bob.add_peer(alice.pubkey, alice.endpoint)
    sent: list = []
    bob.transport.sent_observers.append(sent.append)
    try:
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [os.urandom(32)])
        with pytest.raises(ApprovalDenied):
            await bob.join_signing_request(record)
        spec = bob.requests[request_key(record)].specs[0]
        sid = spec.session_id
        epoch = next(e for e in range(2) if spec.coordinator(e) == alice.pubkey)
        t = alice.transport
        await t.send(bob.endpoint, t.seal(MsgType.READY, sid, encode_body(
            MsgType.READY, epoch=epoch, attempt=0)))
        pns = [nonce_gen(pubkey=k)[1] for k in spec.participants]
        await t.send(bob.endpoint, t.seal(MsgType.NONCES, sid, encode_body(
            MsgType.NONCES, epoch=epoch, attempt=0, pubnonces=pns, aggnonce=nonce_agg(pns))))
        placeholder = bob.sessions.get(sid)
        with pytest.raises(asyncio.TimeoutError):
            await bob.start_round2(sid, timeout=0.5)     # even asking for round 2 signs nothing
        await asyncio.sleep(0.2)
        assert placeholder.joined_local is False and placeholder.status == "created"
        assert [e.msg_type for e in sent] == []
    finally:
        await bob.stop()
        await alice.stop()


async def test_the_sessions_of_one_request_share_one_key_aggregation():
    """A pushed request may carry 50 messages over 16 keys; aggregating the keys once per
    message made one push cost ~50 ms of the event loop (measured; see the review doc)."""
    nodes = await make_cluster(3)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32) for _ in range(20)])
        specs = nodes[1].requests[request_key(record)].specs
        assert len(specs) == 20 and len({s.session_id for s in specs}) == 20
        assert all(s.keyagg is specs[0].keyagg for s in specs)
        assert all(s.participants is specs[0].participants for s in specs)
    finally:
        await stop_all(nodes)


async def test_lifetime_blame_names_only_the_absent_not_honest_participants():
    """n = 4, one participant never joins. A plain participant never sees the others'
    JOINs (they go to the coordinator): it used to name every key it had not heard from,
    i.e. honest participants too. Only the coordinator (which waited for the JOIN itself)
    names the absent one; the others keep its claim as ``reported`` and blame nobody."""
    cfg = FAST.with_(session_lifetime=1.0, join_timeout=60.0)
    nodes = await make_cluster(4, config=cfg)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        spec = nodes[0].requests[request_key(record)].specs[0]
        absent = by_key(nodes)[spec.order[-1]]          # never the coordinator of epoch 0
        present = [x for x in nodes if x is not absent]
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in present))
        for x in present:
            with pytest.raises(SessionAborted) as info:
                await x.get_final_signature(ids[0][0], 10)
            assert "lifetime" in info.value.reason
            if x.pubkey == spec.coordinator(0):
                assert info.value.culprits == (absent.pubkey,), x.pubkey.hex()
            else:
                assert info.value.culprits == (), x.pubkey.hex()
                assert info.value.reported == (absent.pubkey,)
    finally:
        await stop_all(nodes)


class StallingCoordinator(Session):
    """A strict fake of a hostile coordinator: it takes every JOIN and never answers, never
    aborts (its deadlines and its lifetime do nothing)."""

    def _coord_deadline(self, c, phase) -> None:
        return None

    def _lifetime_over(self) -> None:
        return None


async def test_a_coordinator_that_stalls_is_the_one_named_at_the_end():
    cfg = FAST.with_(session_lifetime=1.0, join_timeout=0.5)
    nodes = await make_cluster(4, config=cfg)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        spec = nodes[0].requests[request_key(record)].specs[0]
        coord = by_key(nodes)[spec.coordinator(0)]
        coord.sessions.session_class = StallingCoordinator
        late = by_key(nodes)[spec.order[-1]]             # never joins
        early = [x for x in nodes if x is not late]
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in early))
        for x in early:
            if x is coord:
                continue
            with pytest.raises(SessionAborted) as info:
                await x.get_final_signature(ids[0][0], 10)
            assert info.value.culprits == (coord.pubkey,), x.pubkey.hex()
    finally:
        await stop_all(nodes)
