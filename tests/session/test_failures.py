"""Failure paths of the session protocol on real nodes: drop-outs, blame, forgeries, failover."""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.session import Session, SessionAborted
from musig2_plugin.transport import Envelope, MsgType, PeerRefused
from musig2_plugin.session.messages import encode_body

from session_cluster import (FAST, Recorder, WireLog, by_key, make_cluster,
                             nonce_reuse_report, stop_all, until, wait_event)


async def _setup(n: int, **cluster_kw):
    nodes = await make_cluster(n, **cluster_kw)
    keys = [x.pubkey for x in nodes]
    msg = os.urandom(32)
    record = await nodes[0].announce_signing_request(keys, [msg])
    spec = nodes[0].requests[request_key(record)].specs[0]
    coordinator = by_key(nodes)[spec.order[0]]
    victim = next(x for x in nodes if x is not coordinator)
    return nodes, record, spec, msg, coordinator, victim


async def _expect_abort_everywhere(nodes, sid, culprit: bytes, phrase: str, *, witness: bytes,
                                   kind: str):
    """Everyone ends the session; only ``witness`` (who saw the fault itself) blames the
    culprit, on evidence ``kind``; the others keep the witness's claim as ``reported`` and
    blame nobody on its word (issue 14, item 3)."""
    for node in nodes:
        with pytest.raises(SessionAborted) as info:
            await node.get_final_signature(sid, timeout=15)
        assert phrase in info.value.reason
        if node.pubkey == witness:
            assert info.value.culprits == (culprit,), node.pubkey.hex()
            assert info.value.evidence == {culprit: kind}
        else:
            assert info.value.culprits == () and info.value.evidence == {}, node.pubkey.hex()
            assert info.value.reported == (culprit,)


async def test_drop_out_in_round1_is_named():
    nodes, record, spec, msg, coord, victim = await _setup(3)
    others = [x for x in nodes if x is not victim]
    recs = {x.pubkey: Recorder(x) for x in others}
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in others))
        # The victim joins but never sends its nonce, then disappears.
        await victim.join_signing_request(record, auto=False)
        await wait_event(victim, "session:ready", 10)
        await victim.stop()
        await _expect_abort_everywhere(others, spec.session_id, victim.pubkey, "round 1",
                                       witness=coord.pubkey, kind="timeout")
        await asyncio.sleep(0.1)
        for key, r in recs.items():
            (ab,) = r.of("session:aborted")
            assert ab["culprits"] == ((victim.pubkey,) if key == coord.pubkey else ())
            assert ab["reported"] == (() if key == coord.pubkey else (victim.pubkey,))
            assert ab["session_id"] == spec.session_id
            assert ab["request_id"] == request_key(record) and "round 1" in ab["reason"]
            assert r.of("session:closed")[-1]["outcome"] == "aborted"
            assert r.of("signature:finalized") == []
    finally:
        await stop_all(nodes)


async def test_drop_out_in_round2_is_named():
    nodes, record, spec, msg, coord, victim = await _setup(4)
    others = [x for x in nodes if x is not victim]
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in others))
        (sid,) = await victim.join_signing_request(record, auto=False)
        await victim.start_round1(sid, timeout=10)        # sends its nonce, then vanishes
        await victim.stop()
        await _expect_abort_everywhere(others, sid, victim.pubkey, "round 2",
                                       witness=coord.pubkey, kind="timeout")
    finally:
        await stop_all(nodes)


class WrongPartialSig(Session):
    """A deliberately faulty participant: signs correctly, then flips a bit of the result.

    (A strict fake of a buggy or malicious co-signer; its nonce is still consumed.)
    """

    def _make_partial_sig(self) -> bytes:
        psig = super()._make_partial_sig()
        return psig[:31] + bytes([psig[31] ^ 1])


async def test_wrong_partial_signature_is_blamed():
    nodes, record, spec, msg, coord, victim = await _setup(3)
    victim.sessions.session_class = WrongPartialSig
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        await _expect_abort_everywhere(nodes, spec.session_id, victim.pubkey,
                                       "invalid partial signature", witness=coord.pubkey,
                                       kind="invalid")
        assert coord.transport.scores.invalid_count(victim.pubkey) >= 1
        for x in nodes:
            if x is not coord:
                assert coord.transport.scores.invalid_count(x.pubkey) == 0 or x is victim
    finally:
        await stop_all(nodes)


async def test_replayed_forged_and_misdirected_messages_refused_and_session_completes():
    nodes, record, spec, msg, coord, victim = await _setup(3, config=FAST.with_(round_timeout=3))
    log = WireLog()
    log.attach(coord)
    captured: list[Envelope] = []
    coord.transport.observers.append(captured.append)
    mallory = Musig2Node(os.urandom(32), config=FAST, chain=REGTEST)
    await mallory.start(dht=False)
    try:
        (sid,) = await victim.join_signing_request(record, auto=False)
        await asyncio.gather(*(x.join_signing_request(record) for x in nodes if x is not victim))
        await victim.start_round1(sid, 10)
        # 1. Replay of the victim's genuine NONCE to the coordinator.
        nonce_env = next(e for e in captured if e.msg_type == MsgType.NONCE
                         and e.sender == victim.pubkey)
        with pytest.raises(PeerRefused, match="ReplayedMessage"):
            await victim.transport.pool.request(coord.endpoint, "m2.msg", [nonce_env.encode().hex()])
        # 2. Forged: mallory signs a PSIG claiming to be the victim.
        body = encode_body(MsgType.PSIG, epoch=0, attempt=0, psig=bytes(32))
        forged = Envelope.sign(mallory._seckey, msg_type=MsgType.PSIG, session_id=sid,
                               sender=victim.pubkey, counter=1 << 60, body=body, chain=REGTEST)
        with pytest.raises(PeerRefused, match="BadSignature"):
            await mallory.transport.send(coord.endpoint, forged)
        # 3. Mallory as herself: not a participant.
        with pytest.raises(PeerRefused, match="NotAParticipant"):
            await mallory.transport.send(coord.endpoint, mallory.transport.seal(MsgType.PSIG, sid, body))
        # 4. A participant that is not the coordinator announcing a final signature.
        fake_final = victim.transport.seal(MsgType.FINAL, sid, encode_body(
            MsgType.FINAL, epoch=0, attempt=0, signature=bytes(64)))
        other = next(x for x in nodes if x is not victim and x is not coord)
        with pytest.raises(PeerRefused, match="NotCoordinator"):
            await victim.transport.send(other.endpoint, fake_final)
        # 5. A malformed body, correctly signed.
        with pytest.raises(PeerRefused, match="BadBody"):
            await victim.transport.send(coord.endpoint,
                                        victim.transport.seal(MsgType.PSIG, sid, b'{"e":0}'))
        # Nothing of that changed the session: it completes with a valid signature.
        sig = await victim.start_round2(sid, 10)
        sigs = await asyncio.gather(*(x.get_final_signature(sid, 10) for x in nodes))
        assert set(sigs) == {sig}
        assert schnorr_verify(spec.aggregate_xonly, msg, sig)
        assert len(log.psigs) == 3
        assert coord.transport.refusals["ReplayedMessage"] == 1
        assert coord.transport.refusals["BadSignature"] == 1
        assert coord.transport.refusals["NotAParticipant"] == 1
        # Only what proves misbehaviour is charged to a key: the victim's bad body. The
        # replay proves nothing (anyone who saw the message can resend it).
        assert coord.transport.scores.invalid_count(victim.pubkey) == 1
        assert coord.transport.scores.invalid_count(mallory.pubkey) == 1
    finally:
        await mallory.stop()
        await stop_all(nodes)


async def test_coordinator_killed_between_rounds_fails_over_and_completes():
    """The coordinator dies after round 1; the next in the election order takes over and,
    when the dead one comes back (new process state, same key), signs with fresh nonces."""
    nodes, record, spec, msg, coord, victim = await _setup(3)
    log = WireLog()
    for x in nodes:
        log.attach(x)
    successor = by_key(nodes)[spec.order[1]]
    others = [x for x in nodes if x is not coord]
    recs = {x.pubkey: Recorder(x) for x in others}
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in others))
        (sid,) = await coord.join_signing_request(record, auto=False)
        await coord.start_round1(sid, 10)           # round 1 completes everywhere
        await until(lambda: all(r.of("round1:complete") for r in recs.values()), 10)
        await coord.stop()                          # killed between the rounds
        await until(lambda: all(r.of("session:failover") for r in recs.values()), 15)
        # It comes back: a new node object with the same key and no memory of the session.
        reborn = Musig2Node(coord._seckey, config=FAST, chain=REGTEST)
        await reborn.start(dht=False)
        log.attach(reborn)
        await reborn.join_signing_request(record, rejoin=True)
        sigs = await asyncio.gather(*(x.get_final_signature(sid, 20) for x in others + [reborn]))
        assert len(set(sigs)) == 1 and schnorr_verify(spec.aggregate_xonly, msg, sigs[0])
        for r in recs.values():
            fo = r.of("session:failover")
            assert fo[0]["coordinator"] == successor.pubkey and fo[0]["silent"] == coord.pubkey
            assert r.of("session:attempt")[-1]["coordinator"] == successor.pubkey
        # Two attempts; the coordinator's first nonce never signed anything.
        attempts = {a for _, a, _ in log.nonces}
        assert len(attempts) == 2
        pubnonces = [pn for _, _, pn in log.nonces]
        assert len(pubnonces) == len(set(pubnonces))
        assert all(len(v) <= 1 for v in nonce_reuse_report(log).values())
        await reborn.stop()
    finally:
        await stop_all(nodes)


async def test_coordinator_that_never_returns_is_named():
    nodes, record, spec, msg, coord, victim = await _setup(
        3, config=FAST.with_(rejoin_timeout=1.5))
    others = [x for x in nodes if x is not coord]
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in others))
        (sid,) = await coord.join_signing_request(record, auto=False)
        await coord.start_round1(sid, 10)
        await coord.stop()
        await _expect_abort_everywhere(others, sid, coord.pubkey, "never joined",
                                       witness=spec.order[1], kind="timeout")
    finally:
        await stop_all(nodes)


async def test_unapproved_request_is_not_joined():
    async def deny(record, payload):
        return False

    nodes = await make_cluster(2, approve=deny)
    try:
        record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                         [os.urandom(32)])
        from musig2_plugin.coordinator import ApprovalDenied
        with pytest.raises(ApprovalDenied):
            await nodes[1].join_signing_request(record)
        assert all(s.joined_local is False for s in nodes[1].sessions.sessions.values())
    finally:
        await stop_all(nodes)


async def test_rejoin_spam_is_bounded_by_max_attempts():
    """Each fresh JOIN restarts round 1 (new nonces for all): a participant repeating it
    cannot keep the others busy for ever; the session aborts after max_attempts."""
    nodes, record, spec, msg, coord, victim = await _setup(
        3, config=FAST.with_(max_attempts=3, round_timeout=5.0))
    try:
        (sid,) = await victim.join_signing_request(record, auto=False)
        await asyncio.gather(*(x.join_signing_request(record, auto=False)
                               for x in nodes if x is not victim))
        await until(lambda: coord.sessions.get(sid).attempt == 0, 10)
        for _ in range(3):
            body = encode_body(MsgType.JOIN, epoch=0, last_attempt=-1, fresh=True,
                               endpoint=list(victim.endpoint))
            await victim.transport.send(coord.endpoint, victim.transport.seal(MsgType.JOIN, sid, body))
        with pytest.raises(SessionAborted, match="too many attempts"):
            await coord.get_final_signature(sid, 10)
    finally:
        await stop_all(nodes)


async def test_session_lifetime_ends_a_session_that_never_becomes_ready():
    nodes, record, spec, msg, coord, victim = await _setup(
        3, config=FAST.with_(session_lifetime=1.0, join_timeout=60.0))
    try:
        others = [x for x in nodes if x is not victim]
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in others))
        for x in others:
            with pytest.raises(SessionAborted) as info:
                await x.get_final_signature(ids[0][0], 10)
            assert "lifetime" in info.value.reason
            if x.pubkey == coord.pubkey:                 # it saw the JOIN missing itself
                assert info.value.culprits == (victim.pubkey,)
            else:
                assert info.value.culprits == () and info.value.reported == (victim.pubkey,)
    finally:
        await stop_all(nodes)


async def test_one_early_failover_does_not_split_the_session():
    """A participant whose link flaps fails over on its own. Nobody follows it (an epoch
    ends only on evidence each participant sees itself), and it returns to the epoch-0
    coordinator as soon as that one's signed READY proves it alive: one session, one
    signature, nobody blamed."""
    nodes, record, spec, msg, coord, victim = await _setup(4, config=FAST.with_(round_timeout=5))
    recs = {x.pubkey: Recorder(x) for x in nodes}
    try:
        (sid,) = await victim.join_signing_request(record)
        victim.sessions.get(sid)._coordinator_silent(0)     # as if the coordinator looked dead
        assert victim.sessions.get(sid).epoch == 1
        await asyncio.gather(*(x.join_signing_request(record) for x in nodes if x is not victim))
        sigs = await asyncio.gather(*(x.get_final_signature(sid, 20) for x in nodes))
        assert len(set(sigs)) == 1 and schnorr_verify(spec.aggregate_xonly, msg, sigs[0])
        for x in nodes:
            assert x.sessions.get(sid).epoch == 0
            assert x.sessions.get(sid).coordinator == spec.order[0]
            assert x.sessions.get(sid).culprits == ()
        await asyncio.sleep(0.05)
        for key, r in recs.items():
            assert r.of("signature:finalized")[0]["signature"] == sigs[0]
            assert [kw["epoch"] for kw in r.of("session:failover")] == \
                ([1, 0] if key == victim.pubkey else [])
    finally:
        await stop_all(nodes)


async def test_epoch_beyond_the_failover_bound_is_refused():
    nodes, record, spec, msg, coord, victim = await _setup(3)
    try:
        (sid,) = await victim.join_signing_request(record)
        body = encode_body(MsgType.JOIN, epoch=FAST.max_failovers + 1, last_attempt=-1,
                           fresh=False, endpoint=list(victim.endpoint))
        target = by_key(nodes)[spec.coordinator(FAST.max_failovers + 1)]
        if target is victim:
            target = coord
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await victim.transport.send(target.endpoint, victim.transport.seal(MsgType.JOIN, sid, body))
    finally:
        await stop_all(nodes)


class InvalidPublicNonce(Session):
    """A deliberately faulty participant that announces a public nonce off the curve
    (its real secret nonce is generated, then destroyed unused)."""

    def _make_nonce(self, attempt=None):
        secnonce, _ = super()._make_nonce(attempt)
        secnonce.discard()
        return secnonce, b"\x02" + b"\xff" * 32 + b"\x02" + b"\xff" * 32


async def test_invalid_public_nonce_is_blamed_at_once():
    nodes, record, spec, msg, coord, victim = await _setup(3, config=FAST.with_(round_timeout=30))
    victim.sessions.session_class = InvalidPublicNonce
    try:
        await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        # round_timeout is 30 s: an abort well before it proves the blame was immediate.
        await _expect_abort_everywhere(nodes, spec.session_id, victim.pubkey,
                                       "invalid public nonce", witness=coord.pubkey,
                                       kind="invalid")
        assert coord.transport.scores.invalid_count(victim.pubkey) == 1
    finally:
        await stop_all(nodes)
