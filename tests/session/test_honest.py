"""Honest sessions never fail and never blame the honest (issue 14, items 1-3).

Real nodes on 127.0.0.1, real aiorpcx sessions, real libsecp256k1. Each test fails on the
code before the fix it guards (checked once against main at a0f8909):

* item 1: wall-clock counters and a 256 us window refused reordered honest messages as
  replays, charged the connection, and a 50-input request failed over or aborted;
* item 2: one node-wide push budget spent before any check let junk starve co-signers;
* item 3: any participant coordinating *some* reachable epoch could abort the session and
  name an honest participant, who was then recorded as culprit.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.records import SigningRequest
from musig2_plugin.session import SessionStatus
from musig2_plugin.session.messages import encode_body
from musig2_plugin.transport import MsgType, PeerRefused

from musig2_plugin.foundation.chain import REGTEST

from session_cluster import Recorder, by_key, make_cluster, stop_all, until

#: Honest timings for a loaded 2-core machine: nothing here may fail over on a slow turn.
HONEST = Musig2Config().with_(round_timeout=20.0, coordinator_grace=10.0)


def _no_blame(recs) -> None:
    """No node aborted anything, failed over, or named anyone."""
    for r in recs:
        assert r.of("session:aborted") == []
        assert r.of("session:failover") == []


async def _run_request(nodes, n_inputs: int, timeout: float = 120.0) -> None:
    keys = [x.pubkey for x in nodes]
    msgs = [os.urandom(32) for _ in range(n_inputs)]
    record = await nodes[0].announce_signing_request(keys, msgs)
    ids = await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
    agg = Musig2Node.aggregate_key(keys).xonly()
    for i, sid in enumerate(ids[0]):
        sigs = await asyncio.gather(*(x.get_final_signature(sid, timeout) for x in nodes))
        assert len(set(sigs)) == 1 and schnorr_verify(agg, msgs[i], sigs[0])


# ---------------------------------------------------------------------------- item 1
@pytest.mark.slow
async def test_fifty_input_request_between_three_nodes_ten_times_without_failover():
    """Regression (item 1): on the old code one 50-input request between 3 nodes failed
    over (168 times between 2 nodes) or aborted naming an honest participant."""
    nodes = await make_cluster(3, config=HONEST)
    recs = [Recorder(x) for x in nodes]
    try:
        for _ in range(10):
            await _run_request(nodes, 50)
        _no_blame(recs)
        for x in nodes:
            assert x.transport.refusals == {}
            assert all(s.invalid_messages == 0 for s in x.transport._inbound)
    finally:
        await stop_all(nodes)


# ---------------------------------------------------------------------------- item 2
async def test_a_stranger_flood_does_not_starve_a_known_cosigners_push():
    """Regression (item 2): 60 signed requests from fresh keys emptied the node-wide budget
    (burst 40) and the co-signer's push that followed was refused."""
    from musig2_plugin.transport import Transport
    nodes = await make_cluster(2, config=HONEST)
    alice, bob = nodes
    # Several connections: aiorpcx slows down one connection that earns many error
    # answers, which is not what this test is about.
    floods = [Transport(os.urandom(32), HONEST, membership=lambda s: None, chain=REGTEST,
                        on_envelope=_nothing, on_request=_nothing) for _ in range(6)]
    refused = 0
    try:
        for i in range(60):
            stranger = os.urandom(32)
            rec = SigningRequest.create(stranger, chain=REGTEST,
                                        keys=[bob.pubkey, _pub(stranger)],
                                        messages=[os.urandom(32)], payload=b"\x00" * 64)
            try:
                await floods[i % 6].push_request(bob.endpoint, rec.encode())
            except PeerRefused as exc:
                refused += "rate" in str(exc)
        assert refused > 0                             # the flood did meet a budget
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey],
                                                      [os.urandom(32)])
        assert request_key(record) in bob.requests     # pushed and admitted at once
    finally:
        for f in floods:
            await f.stop()
        await stop_all(nodes)


async def _nothing(*_args) -> None:
    return None


def _pub(sk: bytes) -> bytes:
    from musig2_plugin.crypto import plain_pubkey
    return plain_pubkey(sk)


async def test_a_refused_push_is_reported_and_the_dht_brings_the_request_anyway():
    """Regression (item 2): a refused push was logged at INFO and nothing else; the
    participant never heard of the request unless its own code polled the DHT. Now the
    caller sees the refusal (return value and event) and the node's own watcher finds the
    request in the DHT within ``request_watch_interval``."""
    from musig2_plugin.dht import DhtConfig
    dht = DhtConfig(rate_limit_by="address")
    strict = HONEST.with_(stranger_push_burst=1, stranger_push_rate_per_sec=0.001,
                          request_watch_interval=1.0)
    alice = Musig2Node(os.urandom(32), config=HONEST, dht_config=dht, chain=REGTEST)
    bob = Musig2Node(os.urandom(32), config=strict, dht_config=dht, chain=REGTEST)
    await alice.start(dht=True)
    await bob.start(dht=True, bootstrap=[alice.dht_address])
    rec = Recorder(alice)
    try:
        alice.add_peer(bob.pubkey, bob.endpoint)      # alice knows bob; bob does not know alice
        first = await alice.announce([alice.pubkey, bob.pubkey], [os.urandom(32)])
        assert [p.status for p in first.pushes] == ["delivered"]    # the stranger's 1 token
        second = await alice.announce([alice.pubkey, bob.pubkey], [os.urandom(32)])
        (outcome,) = second.pushes
        assert outcome.status == "refused" and "rate" in outcome.detail
        assert second.not_pushed == (outcome,) and second.stored_in_dht
        await until(lambda: rec.of("signing-request:push-failed"), 5)
        (event,) = rec.of("signing-request:push-failed")
        assert event["participant"] == bob.pubkey and event["status"] == "refused"
        assert event["request_id"] == request_key(second.record) and event["in_dht"]
        assert request_key(second.record) not in bob.requests
        await until(lambda: request_key(second.record) in bob.requests, 15)
        assert bob.requests[request_key(second.record)].via == "dht"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


# ---------------------------------------------------------------------------- item 3
async def _ready(n: int, config: Musig2Config = HONEST):
    nodes = await make_cluster(n, config=config)
    record = await nodes[0].announce_signing_request([x.pubkey for x in nodes],
                                                     [os.urandom(32)])
    spec = nodes[0].requests[request_key(record)].specs[0]
    ids = await asyncio.gather(*(x.join_signing_request(record, auto=False) for x in nodes))
    sid = ids[0][0]
    await until(lambda: all(x.sessions.get(sid).status == SessionStatus.READY for x in nodes), 20)
    return nodes, spec, sid


async def test_an_abort_from_a_participant_that_is_not_the_coordinator_is_refused():
    """Regression (item 3): with n <= 4 every participant coordinates a reachable epoch;
    its ABORT for that epoch, naming an honest participant, was accepted by the coordinator
    and by the victim, and the victim recorded as culprit."""
    nodes, spec, sid = await _ready(3)
    recs = [Recorder(x) for x in nodes]
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        mallory = by_key(nodes)[spec.coordinator(1)]
        victim = next(x for x in nodes if x is not coord and x is not mallory)
        body = encode_body(MsgType.ABORT, epoch=1, attempt=0, reason="framed",
                           culprits=[victim.pubkey])
        for target in (coord, victim):
            with pytest.raises(PeerRefused, match="NotOurEpoch"):
                await mallory.transport.send(target.endpoint,
                                             mallory.transport.seal(MsgType.ABORT, sid, body))
            assert not target.sessions.get(sid).closed
            assert target.transport.scores.invalid_count(mallory.pubkey) == 0
        await asyncio.gather(*(x.start_round1(sid, 20) for x in nodes))
        sigs = await asyncio.gather(*(x.start_round2(sid, 20) for x in nodes))
        assert len(set(sigs)) == 1 and schnorr_verify(spec.aggregate_xonly, spec.message, sigs[0])
        _no_blame(recs)
    finally:
        await stop_all(nodes)


async def test_a_join_for_a_later_epoch_moves_nobody():
    """Regression (item 3): a JOIN for a later epoch from that epoch's coordinator made
    everyone "follow" it, so one participant could end the epoch for all."""
    nodes, spec, sid = await _ready(3)
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        mallory = by_key(nodes)[spec.coordinator(1)]
        body = encode_body(MsgType.JOIN, epoch=1, last_attempt=-1, fresh=False,
                           endpoint=list(mallory.endpoint))
        for target in nodes:
            if target is not mallory:
                await mallory.transport.send(target.endpoint,
                                             mallory.transport.seal(MsgType.JOIN, sid, body))
        assert all(x.sessions.get(sid).epoch == 0 for x in nodes)
        assert coord.sessions.get(sid).status == SessionStatus.READY
        await asyncio.gather(*(x.start_round1(sid, 20) for x in nodes))
        sigs = await asyncio.gather(*(x.start_round2(sid, 20) for x in nodes))
        assert len(set(sigs)) == 1
    finally:
        await stop_all(nodes)


# ---------------------------------------------------------------------------- must-show
@pytest.mark.slow
async def test_hundred_back_to_back_and_twenty_concurrent_three_of_three_requests():
    """The same three peers: 100 requests one after the other (the old node-wide push
    budget failed such a series after 56-88), then 20 at once: every one signs, no node
    fails over, aborts or names anyone, and nothing is refused."""
    nodes = await make_cluster(3, config=HONEST)
    recs = [Recorder(x) for x in nodes]
    try:
        for _ in range(100):
            await _run_request(nodes, 1)
        await asyncio.gather(*(_run_request(nodes, 1) for _ in range(20)))
        _no_blame(recs)
        assert sum(len(r.of("signature:finalized")) for r in recs) == 3 * 120
        for x in nodes:
            assert x.transport.refusals == {}
    finally:
        await stop_all(nodes)


@pytest.mark.slow
async def test_junk_pushes_at_a_thousand_per_second_do_not_stop_honest_sessions():
    """A stranger in its own process pushes junk (valid records from fresh keys, broken
    signatures, garbage, forged envelopes) at 1,000/s at Bob for the whole test, while
    Alice, Bob and Carol run 20 requests back to back: every one completes, nobody is
    blamed, and the junk was really read and refused by Bob."""
    import json
    import subprocess
    import sys
    nodes = await make_cluster(3, config=HONEST)
    alice, bob, carol = nodes
    recs = [Recorder(x) for x in nodes]
    script = os.path.join(os.path.dirname(__file__), "junk_process.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, script, bob.endpoint[0], str(bob.endpoint[1]), bob.pubkey.hex(),
        "1000", "8", stdout=subprocess.PIPE)
    try:
        await until(lambda: sum(bob.transport.refusals.values()) > 200, 20)
        for i in range(20):
            creator = nodes[i % 3]
            await _run_request([creator] + [x for x in nodes if x is not creator], 1)
        report = json.loads((await asyncio.wait_for(proc.communicate(), 30))[0])
        assert report["sent"] >= 5000
        _no_blame(recs)
        assert sum(len(r.of("signature:finalized")) for r in recs) == 3 * 20
        refused = bob.transport.refusals
        assert refused.get("PushRefused", 0) > 0 and refused.get("RequestRefused", 0) > 0
        assert refused.get("BadSignature", 0) > 0
        for x in (alice, carol):
            assert x.transport.refusals == {}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stop_all(nodes)


async def test_a_coordinator_caught_lying_is_blamed_on_invalid_evidence():
    """A NONCES whose aggregate is wrong is a signed contradiction the participant checks
    itself: it leaves that coordinator at once (n = 2: it coordinates epoch 1 itself), and
    when the liar does not come back it names it on ``invalid`` evidence (not ``timeout``);
    it never signs anything of the lying attempt."""
    from musig2_plugin.session import Evidence, SessionAborted
    nodes, spec, sid = await _ready(2, HONEST.with_(rejoin_timeout=0.5))
    try:
        coord = by_key(nodes)[spec.coordinator(0)]
        victim = next(x for x in nodes if x is not coord)
        victim.sessions.get(sid)._do_round1()        # its nonce goes to the coordinator
        mine = victim.sessions.get(sid)._pubnonce
        pubnonces = [mine for _ in spec.participants]    # ours is in the list ...
        body = encode_body(MsgType.NONCES, epoch=0, attempt=0, pubnonces=pubnonces,
                           aggnonce=bytes(66))        # ... but the aggregate is a lie
        with pytest.raises(PeerRefused, match="InvalidContribution"):
            await coord.transport.send(victim.endpoint,
                                       coord.transport.seal(MsgType.NONCES, sid, body))
        with pytest.raises(SessionAborted) as info:
            await victim.get_final_signature(sid, 5)
        assert info.value.culprits == (coord.pubkey,)
        assert info.value.evidence == {coord.pubkey: Evidence.INVALID}
        assert victim.sessions.get(sid)._psig is None
    finally:
        await stop_all(nodes)
