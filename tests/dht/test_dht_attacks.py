"""Attacks on the DHT, each refused and counted, while honest records stay findable.

The attacker is a real node of the network that sends crafted ``store_record``
RPCs (and raw datagrams) straight to the nodes closest to the topic.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import socket

import umsgpack

from dht_netutil import FAST, make_ad, network, seckey, wait_until
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST, TESTNET
from musig2_plugin.crypto import plain_pubkey, schnorr_sign
from musig2_plugin.dht import DhtConfig, DhtNode, Discovery
from musig2_plugin.records import SigningRequest, topic_for_type

N_NODES = 30
SPEND = topic_for_type("spend", REGTEST, 0)


async def store_at_closest(attacker: DhtNode, topic: bytes, data: bytes) -> list[str]:
    """Send raw record bytes to the k closest nodes of ``topic``; their replies."""
    closest = await attacker.closest_nodes(topic)
    assert len(closest) >= FAST.ksize // 2
    replies = await asyncio.gather(*(attacker.protocol.call_store_record(n, topic, data)
                                     for n in closest))
    assert all(ok for ok, _ in replies)
    return [status for _, status in replies]


def refused(nodes, reason: str) -> int:
    return sum(n.stats.get("refused:" + reason, 0) for n in nodes)


async def honest_setup(nodes, count=5):
    ads = [make_ad(i) for i in range(count)]
    for i, ad in enumerate(ads):
        assert await nodes[i].publish(ad) >= FAST.ksize // 2
    return ads


async def assert_honest_found(nodes, ads, *, absent=()):
    found = await Discovery(nodes[-1]).find_signers("spend")
    by_owner = {a.owner: a for a in found}
    for ad in ads:
        assert by_owner.get(ad.owner) == ad, "honest advertisement lost"
    for owner in absent:
        assert owner not in by_owner or by_owner[owner] in ads


def resign(record, signer_key, **changes):
    rec = dataclasses.replace(record, signature=b"", _encoded=b"", **changes)
    return dataclasses.replace(rec, signature=schnorr_sign(signer_key, rec.sighash()))


async def test_forged_signature_refused():
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        victim = make_ad(50)
        data = victim.encode()
        forged = data[:-64] + bytes(64)  # garbage signature
        statuses = await store_at_closest(nodes[7], SPEND, forged)
        assert set(statuses) == {"refused:InvalidSignature"}
        # redirecting a genuine advertisement's endpoint breaks its signature too
        redirected = data.replace(b"127.0.0.1", b"127.6.6.6")
        assert set(await store_at_closest(nodes[7], SPEND, redirected)) == {"refused:InvalidSignature"}
        assert refused(nodes, "InvalidSignature") >= 2 * (FAST.ksize // 2)
        await assert_honest_found(nodes, ads, absent=[victim.owner])


async def test_advertisement_of_someone_elses_key_refused():
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        attacker_key = os.urandom(32)
        # claims honest signer 0's key with the attacker's endpoint, signed by the attacker
        fake = resign(make_ad(0, seq=ads[0].seq + 10), attacker_key,
                      endpoint=dataclasses.replace(ads[0].endpoint, port=6666))
        statuses = await store_at_closest(nodes[8], SPEND, fake.encode())
        assert set(statuses) == {"refused:InvalidSignature"}
        await assert_honest_found(nodes, ads)
        found = await Discovery(nodes[-1]).find_signers("spend")
        assert all(a.endpoint.port != 6666 for a in found)


async def test_replay_of_an_older_seq_refused():
    async with network(N_NODES) as nodes:
        old = make_ad(1, seq=1_000)
        new = make_ad(1, seq=2_000, nickname="current")
        assert await nodes[0].publish(old) >= FAST.ksize // 2
        assert await nodes[0].publish(new) >= FAST.ksize // 2
        holders = [n for n in nodes if new in n.records.get(SPEND)]
        assert len(holders) >= FAST.ksize // 2
        replies = await asyncio.gather(*(nodes[9].protocol.call_store_record(h.contact, SPEND, old.encode())
                                         for h in holders if h is not nodes[9]))
        assert replies and all(r == (True, "refused:stale") for r in replies), replies
        await store_at_closest(nodes[9], SPEND, old.encode())
        assert all(h.records.get(SPEND) == [new] for h in holders)
        assert refused(nodes, "stale") >= len(replies)
        # a fresh node that never saw the newer version accepts the replay, yet the
        # lookup merges newest-per-owner, so searchers still get seq 2000
        fresh = DhtNode(FAST, chain=REGTEST)
        await fresh.start(bootstrap=[nodes[0].address])
        try:
            ok, status = await nodes[9].protocol.call_store_record(fresh.contact, SPEND, old.encode())
            assert ok and status in ("stored", "duplicate", "refused:stale")
            await assert_honest_found(nodes, [new])
        finally:
            await fresh.stop()


async def test_expired_record_refused():
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        import time
        expired = make_ad(60, ttl=1.0)
        expired = resign(expired, seckey(60), created_at_ms=int((time.time() - 30) * 1000),
                         expires_at_ms=int((time.time() - 29) * 1000))
        assert set(await store_at_closest(nodes[3], SPEND, expired.encode())) == {"refused:ExpiredRecord"}
        future = resign(make_ad(61), seckey(61),
                        created_at_ms=int((time.time() + 3600) * 1000),
                        expires_at_ms=int((time.time() + 7200) * 1000))
        assert set(await store_at_closest(nodes[3], SPEND, future.encode())) == {"refused:FutureRecord"}
        await assert_honest_found(nodes, ads, absent=[expired.owner, future.owner])


async def test_oversized_record_and_datagram_refused():
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        # just over the record cap, still under rpcudp's 8 KiB request cap so it is sent
        big = (make_ad(70).encode() + bytes(C.MAX_RECORD_BYTES))[: C.MAX_RECORD_BYTES + 300]
        assert set(await store_at_closest(nodes[4], SPEND, big)) == {"refused:OversizedRecord"}
        # a datagram larger than any legitimate one is dropped unread
        target = nodes[10]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\x00" + os.urandom(20) + bytes(C.DHT_MAX_DATAGRAM_BYTES + 100), target.address)
        assert await wait_until(lambda: target.stats.get("refused:oversized_datagram") == 1)
        await assert_honest_found(nodes, ads)


async def test_malformed_bytes_refused_and_node_survives():
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        target = nodes[11]
        base = dict(target.stats)
        # malformed record bytes through the real RPC
        for junk in (b"", b"\x01", b"\x01\x01" + os.urandom(200), os.urandom(300)):
            statuses = await store_at_closest(nodes[5], SPEND, junk)
            assert all(s.startswith("refused:") for s in statuses), statuses
        # raw garbage datagrams and RPCs with wrong argument types
        msg_id = os.urandom(20)
        garbage = [
            os.urandom(50),                                                   # not msgpack
            b"\x00" + msg_id + b"\xc1\xc1\xc1",                               # invalid msgpack
            b"\x00" + msg_id + umsgpack.packb("not a list"),                  # wrong shape
            b"\x00" + msg_id + umsgpack.packb(["store_record", [1, 2, 3]]),   # wrong types
            b"\x00" + msg_id + umsgpack.packb(["store_record", [b"x"]]),      # wrong arity
            b"\x00" + msg_id + umsgpack.packb(["find_records", [os.urandom(20), b"t", -1]]),
            b"\x00" + msg_id + umsgpack.packb(["ping", [12345]]),
            b"\x00" + msg_id + umsgpack.packb(["store", [os.urandom(20), b"k", b"v"]]),
            b"\x01" + msg_id + umsgpack.packb({"records": 5}),                # unsolicited reply
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for g in garbage:
                sock.sendto(g, target.address)
        assert await wait_until(lambda: sum(
            v - base.get(k, 0) for k, v in target.stats.items() if k.startswith("refused:")) >= 6)
        stats = target.stats
        assert stats.get("refused:malformed_datagram", 0) >= 1
        assert stats.get("refused:bad_rpc", 0) >= 2
        assert stats.get("refused:legacy_store", 0) >= 1
        assert stats.get("refused:bad_node_id", 0) + stats.get("refused:bad_find", 0) >= 2
        # the node still answers and honest records are still found through it
        ok, _ = await nodes[0].protocol.ping(target.address, nodes[0].node_id)
        assert ok
        found = await Discovery(target).find_signers("spend")
        assert {a.owner for a in found} == {a.owner for a in ads}


async def test_flood_from_one_source_is_rate_limited():
    config = dataclasses.replace(FAST, store_rate_per_minute=40)
    async with network(N_NODES, config) as nodes:
        ads = await honest_setup(nodes, 3)
        victim = nodes[12]
        attacker = nodes[13]
        flood = [make_ad(100 + i, key=seckey(100 + i)).encode() for i in range(150)]
        replies = []
        for i in range(0, 150, 25):  # within the per-peer bound on outstanding RPCs
            replies += await asyncio.gather(*(attacker.protocol.call_store_record(victim.contact, SPEND, d)
                                              for d in flood[i:i + 25]))
        statuses = [s for ok, s in replies if ok]
        assert len(statuses) == 150
        accepted = [s for s in statuses if s == "stored"]
        limited = [s for s in statuses if s == "refused:rate_limited"]
        assert len(accepted) <= 40 and len(limited) >= 110 and len(accepted) + len(limited) == 150
        assert victim.stats["refused:rate_limited"] >= 110
        # an honest signer publishing through another node still reaches the victim
        honest = make_ad(9)
        ok, status = await nodes[14].protocol.call_store_record(victim.contact, SPEND, honest.encode())
        assert ok and status == "stored"
        assert honest in victim.records.get(SPEND)
        assert await nodes[14].publish(honest) >= FAST.ksize // 2
        await assert_honest_found(nodes, ads + [honest])


async def test_rpc_flood_over_the_datagram_budget_is_dropped():
    config = dataclasses.replace(FAST, rpc_rate_per_second=20)
    victim = DhtNode(config, chain=REGTEST)
    await victim.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(100):
                sock.sendto(b"\x00" + os.urandom(20) + umsgpack.packb(["ping", [os.urandom(20)]]),
                            victim.address)
        assert await wait_until(lambda: victim.stats.get("refused:rpc_rate_limited", 0) >= 70)
        assert victim.stats.get("refused:rpc_rate_limited", 0) <= 80
    finally:
        await victim.stop()


async def test_lookup_refuses_bad_records_served_by_a_lying_peer():
    """A malicious node serving forged bytes from find_records cannot inject them."""
    async with network(N_NODES) as nodes:
        ads = await honest_setup(nodes)
        closest = await nodes[-1].closest_nodes(SPEND)
        liar = next(n for n in nodes if n.node_id == closest[0].id)
        forged = make_ad(0, seq=ads[0].seq + 5).encode()[:-64] + bytes(64)
        # a request addressed to someone, served under a signer topic
        wrong_topic = SigningRequest.create(seckey(80), keys=[plain_pubkey(seckey(81))],
                                            messages=[bytes(32)], chain=REGTEST).encode()
        # a genuine, correctly signed advertisement of another chain
        other_chain = make_ad(7, chain=TESTNET).encode()
        orig = liar.protocol.rpc_find_records

        def lying(sender, nodeid, topic, cursor, cookie=None):
            reply = orig(sender, nodeid, topic, cursor, cookie)
            if reply is not None and cursor == 0 and topic == SPEND and "records" in reply:
                reply["records"] = reply["records"] + [forged, wrong_topic, other_chain,
                                                       bytes([C.RECORD_VERSION]) + b"junk"]
                # contacts that would make sendto fail (and asyncio close our socket)
                reply["nodes"] = [(os.urandom(20), "not-an-ip", 1), (os.urandom(20), "::1", 5),
                                  ("x", "1.2.3.4", 9)] + reply["nodes"]
            return reply
        liar.protocol.rpc_find_records = lying
        searcher = nodes[-1]
        found = await Discovery(searcher).find_signers("spend")
        by_owner = {a.owner: a for a in found}
        assert len(found) == 5 and by_owner[ads[0].owner] == ads[0]
        assert searcher.stats.get("refused:lookup_InvalidSignature", 0) == 1
        assert searcher.stats.get("refused:lookup_wrong_topic", 0) == 1
        assert searcher.stats.get("refused:lookup_MalformedRecord", 0) == 1
        assert searcher.stats.get("refused:lookup_WrongChain", 0) == 1
        assert searcher.stats.get("refused:bad_contacts", 0) >= 1
        ok, _ = await nodes[0].protocol.ping(searcher.address, nodes[0].node_id)
        assert ok  # the searcher's socket is still open


def test_config_validation():
    for bad in (dict(ksize=0), dict(rpc_timeout=0), dict(rate_limit_by="ip")):
        try:
            DhtConfig(**bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")
