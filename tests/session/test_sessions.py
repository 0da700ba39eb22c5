"""Full MuSig2 sessions between real nodes on 127.0.0.1, and the events they fire."""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.foundation.events import SEED_EVENTS

from session_cluster import Recorder, WireLog, make_cluster, nonce_reuse_report, stop_all


@pytest.mark.parametrize("n", [2, 3, 5, 10])
async def test_full_session(n):
    nodes = await make_cluster(n)
    log = WireLog()
    for node in nodes:
        log.attach(node)
    try:
        keys = [x.pubkey for x in nodes]
        msg = os.urandom(32)
        record = await nodes[0].announce_signing_request(keys, [msg], app_data=b"tx")
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        assert len({i for i in ids}) == 1
        sid = ids[0][0]
        sigs = await asyncio.gather(*(x.get_final_signature(sid, timeout=20) for x in nodes))
        output_key = Musig2Node.aggregate_key(keys).xonly()
        assert len(set(sigs)) == 1
        assert schnorr_verify(output_key, msg, sigs[0])
        assert not schnorr_verify(output_key, os.urandom(32), sigs[0])
        # Each participant sent exactly one nonce and one partial signature to the coordinator.
        assert sorted(s for s, _, _ in log.nonces) == sorted(keys)
        assert sorted(s for s, _, _ in log.psigs) == sorted(keys)
        assert all(len(v) == 1 for v in nonce_reuse_report(log).values())
        for node in nodes:
            assert node.transport.refusals == {}
    finally:
        await stop_all(nodes)


async def test_two_concurrent_sessions_sharing_participants():
    nodes = await make_cluster(4)
    a, b, c, d = nodes
    try:
        m1, m2 = os.urandom(32), os.urandom(32)
        r1, r2 = await asyncio.gather(
            a.announce_signing_request([a.pubkey, b.pubkey, c.pubkey], [m1]),
            d.announce_signing_request([b.pubkey, c.pubkey, d.pubkey], [m2]))
        joins = await asyncio.gather(*(x.join_signing_request(r1) for x in (a, b, c)),
                                     *(x.join_signing_request(r2) for x in (b, c, d)))
        s1, s2 = joins[0][0], joins[3][0]
        assert s1 != s2
        sig1 = await asyncio.gather(*(x.get_final_signature(s1, 20) for x in (a, b, c)))
        sig2 = await asyncio.gather(*(x.get_final_signature(s2, 20) for x in (b, c, d)))
        k1 = Musig2Node.aggregate_key([a.pubkey, b.pubkey, c.pubkey]).xonly()
        k2 = Musig2Node.aggregate_key([b.pubkey, c.pubkey, d.pubkey]).xonly()
        assert len(set(sig1)) == 1 and schnorr_verify(k1, m1, sig1[0])
        assert len(set(sig2)) == 1 and schnorr_verify(k2, m2, sig2[0])
        assert not schnorr_verify(k1, m2, sig2[0])
    finally:
        await stop_all(nodes)


async def test_request_with_two_inputs_runs_two_sessions():
    nodes = await make_cluster(3)
    try:
        keys = [x.pubkey for x in nodes]
        msgs = [os.urandom(32), os.urandom(32)]
        record = await nodes[1].announce_signing_request(keys, msgs)
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        assert len(ids[0]) == 2
        q = Musig2Node.aggregate_key(keys).xonly()
        for i, sid in enumerate(ids[0]):
            sigs = await asyncio.gather(*(x.get_final_signature(sid, 20) for x in nodes))
            assert len(set(sigs)) == 1 and schnorr_verify(q, msgs[i], sigs[0])
    finally:
        await stop_all(nodes)


async def test_manual_rounds_through_the_api():
    nodes = await make_cluster(3)
    try:
        keys = [x.pubkey for x in nodes]
        msg = os.urandom(32)
        record = await nodes[0].announce_signing_request(keys, [msg])
        ids = await asyncio.gather(*(x.join_signing_request(record, auto=False) for x in nodes))
        sid = ids[0][0]
        aggnonces = await asyncio.gather(*(x.start_round1(sid, 10) for x in nodes))
        assert len(set(aggnonces)) == 1 and len(aggnonces[0]) == 66
        sigs = await asyncio.gather(*(x.start_round2(sid, 10) for x in nodes))
        assert len(set(sigs)) == 1
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
        assert await nodes[2].get_final_signature(sid, 1) == sigs[0]
    finally:
        await stop_all(nodes)


async def test_every_event_fires_with_the_right_arguments():
    """All 14 seed events, with their documented arguments, on real nodes with a DHT."""
    from musig2_plugin.dht import DhtConfig
    from session_cluster import FAST

    nodes = [Musig2Node(os.urandom(32), config=FAST,
                        dht_config=DhtConfig(rate_limit_by="address"), chain=REGTEST) for _ in range(3)]
    recs = [Recorder(x) for x in nodes]
    try:
        await nodes[0].start(dht=True)
        for x in nodes[1:]:
            await x.start(dht=True, bootstrap=[nodes[0].dht_address])
        ads = [await x.advertise_signer(nickname=f"n{i}") for i, x in enumerate(nodes)]
        found = await nodes[0].find_available_signers()
        assert {ad.owner for ad in found} == {nodes[1].pubkey, nodes[2].pubkey}
        keys = [x.pubkey for x in nodes]
        msg = os.urandom(32)
        record = await nodes[0].announce_signing_request(keys, [msg])
        rid = request_key(record)
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        sid = ids[0][0]
        sig = await nodes[0].get_final_signature(sid, 20)
        await asyncio.gather(*(x.get_final_signature(sid, 20) for x in nodes))
        await nodes[2].withdraw_advertisement()
        await asyncio.sleep(0.2)                       # events are delivered asynchronously
        q = Musig2Node.aggregate_key(keys).xonly()

        r0, r1, r2 = recs
        assert [kw["advertisement"] for kw in r0.of("signer:advertised")] == [ads[0]]
        assert {kw["advertisement"].owner for kw in r0.of("signer:discovered")} == set(keys[1:])
        assert r2.of("signer:withdrawn")[0]["owner"] == nodes[2].pubkey
        created = r0.of("signing-request:created")
        assert created[0]["request_id"] == rid and created[0]["request"] == record
        for r in (r1, r2):
            rec = r.of("signing-request:received")
            assert len(rec) == 1 and rec[0]["request_id"] == rid and rec[0]["via"] == "push"
            assert rec[0]["creator"] == nodes[0].pubkey and rec[0]["session_ids"] == (sid,)
        for node, r in zip(nodes, recs):
            joined = r.of("signing-request:joined")
            assert joined == [{"request_id": rid, "session_ids": (sid,), "participant": node.pubkey}]
            created = r.of("session:created")
            assert len(created) == 1 and created[0]["session_id"] == sid
            assert created[0]["request_id"] == rid and set(created[0]["participants"]) == set(keys)
            assert {kw["participant"] for kw in r.of("session:joined")} == set(keys)
            ready = r.of("session:ready")
            assert len(ready) == 1 and ready[0]["session_id"] == sid and ready[0]["attempt"] == 0
            r1c = r.of("round1:complete")
            assert len(r1c) == 1 and len(r1c[0]["aggnonce"]) == 66 and len(r1c[0]["pubnonces"]) == 3
            assert r.of("round2:complete") == [{"session_id": sid, "attempt": 0}]
            fin = r.of("signature:finalized")
            assert len(fin) == 1 and fin[0]["signature"] == sig and fin[0]["message"] == msg
            assert fin[0]["aggregate_key"] == q and fin[0]["request_id"] == rid
            assert r.of("session:closed") == [{"session_id": sid, "outcome": "finalized"}]
            assert r.of("session:aborted") == []
            order = r.names()
            assert order.index("session:ready") < order.index("round1:complete") \
                < order.index("round2:complete") < order.index("signature:finalized") \
                < order.index("session:closed")
        fired = set().union(*(set(r.names()) for r in recs))
        # session:aborted is exercised by the failure tests (test_failures.py).
        assert set(SEED_EVENTS) - fired == {"session:aborted"}
    finally:
        await stop_all(nodes)


async def test_request_spam_does_not_evict_a_running_session():
    """More requests than the node keeps: old idle ones are forgotten, a live session is not."""
    from session_cluster import FAST
    nodes = await make_cluster(2, config=FAST.with_(max_sessions=2, max_known_requests=4))
    a, b = nodes
    try:
        keys = [a.pubkey, b.pubkey]
        msg = os.urandom(32)
        live = await a.announce_signing_request(keys, [msg])
        (sid,) = await b.join_signing_request(live, auto=False)   # b's session is open
        for _ in range(12):                                        # spam b with requests
            await a.announce_signing_request(keys, [os.urandom(32)])
        assert len(b.sessions.specs) <= 2 * 4
        assert sid in b.sessions.specs and b.sessions.get(sid) is not None
        await a.join_signing_request(live)
        await b.start_round1(sid, 10)
        sig = await b.start_round2(sid, 10)
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sig)
    finally:
        await stop_all(nodes)


async def test_creator_need_not_be_a_participant():
    nodes = await make_cluster(4)
    creator, signers = nodes[0], nodes[1:]
    try:
        keys = [x.pubkey for x in signers]
        msg = os.urandom(32)
        record = await creator.announce_signing_request(keys, [msg])
        assert creator.requests == {}          # it cannot even read the payload
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in signers))
        sigs = await asyncio.gather(*(x.get_final_signature(ids[0][0], 20) for x in signers))
        assert len(set(sigs)) == 1
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
    finally:
        await stop_all(nodes)


async def test_many_concurrent_sessions_over_shared_nodes():
    import random
    rng = random.Random(5)
    nodes = await make_cluster(6)
    try:
        jobs = []
        for i in range(6):
            members = rng.sample(nodes, rng.randint(2, 5))
            creator = members[0]
            msg = os.urandom(32)
            record = await creator.announce_signing_request([x.pubkey for x in members], [msg])
            jobs.append((members, msg, record))
        joined = await asyncio.gather(*(x.join_signing_request(rec)
                                        for members, _, rec in jobs for x in members))
        pos = 0
        for members, msg, rec in jobs:
            sid = joined[pos][0]
            pos += len(members)
            sigs = await asyncio.gather(*(x.get_final_signature(sid, 20) for x in members))
            keys = [x.pubkey for x in members]
            assert len(set(sigs)) == 1
            assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
        for node in nodes:
            assert node.transport.refusals == {}
    finally:
        await stop_all(nodes)
