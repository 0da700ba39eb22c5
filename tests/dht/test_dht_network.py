"""Real kademlia networks of 30+ UDP nodes on 127.0.0.1 in one process.

Signers publish from various nodes; a searcher on yet another node discovers
them. Covers finding all, filters, ranking, withdrawal, expiry, republish,
signing requests by addressed key and the signer:discovered watch.
"""
from __future__ import annotations

import asyncio
import time

from kademlia.node import Node

from dht_netutil import FAST, make_ad, network, seckey, wait_until
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.dht import Discovery, OwnRecords, rank_key
from musig2_plugin.records import (Advertisement, SigningRequest, Withdrawal, topic_for_requests,
                                   topic_for_type)

N_NODES = 30
SPEND = topic_for_type("spend", REGTEST, 0)


async def publish_signers(nodes, ads):
    """Signer i publishes through node i (never the searcher, the last node)."""
    counts = await asyncio.gather(*(nodes[i % (len(nodes) - 1)].publish(ad) for i, ad in enumerate(ads)))
    assert all(c >= FAST.ksize // 2 for c in counts), counts
    return counts


async def test_twenty_signers_found_by_a_searcher_on_another_node():
    async with network(N_NODES) as nodes:
        ads = [make_ad(i, reputation=i * 5 % 101, fee=(i * 37) % 500) for i in range(20)]
        await publish_signers(nodes, ads)
        searcher = Discovery(nodes[-1])
        found = await searcher.find_signers("spend")
        assert {a.owner for a in found} == {a.owner for a in ads}
        assert found == sorted(ads, key=rank_key)  # documented ranking, same records
        # every copy was validated: nodes hold them, none was refused
        assert sum(n.stats["records"] for n in nodes) >= 20 * FAST.ksize // 2
        assert not any(k.startswith("refused:") for n in nodes for k in n.stats), \
            [{k: v for k, v in n.stats.items() if k.startswith("refused")} for n in nodes]


async def test_filters_amount_type_reputation_and_max_results():
    async with network(N_NODES) as nodes:
        ads = [make_ad(0, lo=1_000, hi=50_000, reputation=90),
               make_ad(1, lo=40_000, hi=1_000_000, reputation=70),
               make_ad(2, lo=500_000, hi=9_000_000, reputation=30),
               make_ad(3, tx_types=("swap",), lo=0, hi=10**9, reputation=100),
               make_ad(4, tx_types=("spend", "coinjoin"), lo=0, hi=10**9, reputation=10)]
        await publish_signers(nodes, ads)
        d = Discovery(nodes[-1])
        owners = lambda found: [a.owner for a in found]  # noqa: E731
        assert owners(await d.find_signers("spend", amount=45_000)) == owners([ads[0], ads[1], ads[4]])
        assert owners(await d.find_signers("spend", amount=2_000_000)) == owners([ads[2], ads[4]])
        assert owners(await d.find_signers("spend", amount=10**10)) == []
        assert owners(await d.find_signers("swap")) == owners([ads[3]])
        assert owners(await d.find_signers("coinjoin")) == owners([ads[4]])
        assert owners(await d.find_signers("custody")) == []
        assert owners(await d.find_signers("spend", min_reputation=70)) == owners([ads[0], ads[1]])
        assert owners(await d.find_signers("spend", max_results=2)) == owners([ads[0], ads[1]])
        assert owners(await d.find_signers("spend", amount=45_000, min_reputation=80,
                                           max_results=5)) == owners([ads[0]])


async def test_withdrawal_disappears_everywhere():
    async with network(N_NODES) as nodes:
        ads = [make_ad(i) for i in range(10)]
        await publish_signers(nodes, ads)
        d = Discovery(nodes[-1])
        assert len(await d.find_signers("spend")) == 10
        gone = []
        for i in (2, 5, 7):
            # the owner withdraws from its own node, as it advertised
            w = Withdrawal.for_advertisement(seckey(i), ads[i])
            assert await Discovery(nodes[i]).withdraw(w) >= FAST.ksize // 2
            gone.append(ads[i].owner)
        # a searcher on every node of the network no longer sees them
        for node in nodes:
            found = await Discovery(node).find_signers("spend")
            assert len(found) == 7 and not {a.owner for a in found} & set(gone)
        # the nodes truly closest to the topic hold the tombstones themselves (views of
        # the k-th closest differ a little between publishers; the top ones do not)
        target = Node(SPEND)
        by_distance = sorted(nodes, key=lambda n: n.contact.distance_to(target))
        for node in by_distance[:5]:
            held = {r.owner: r for r in node.records.get(SPEND)}
            assert all(isinstance(held.get(o), Withdrawal) for o in gone)
        for owner in gone:
            holders = [n for n in nodes if any(isinstance(r, Withdrawal) and r.owner == owner
                                               for r in n.records.get(SPEND))]
            assert len(holders) >= FAST.ksize // 2
        # and the old advertisement cannot be pushed back in: the tombstone holders
        # refuse it (a far node that still has its own old copy may say "duplicate")
        stale_before = sum(n.stats.get("refused:stale", 0) for n in nodes)
        assert await nodes[0].publish(ads[2]) <= 2
        assert sum(n.stats.get("refused:stale", 0) for n in nodes) - stale_before >= FAST.ksize // 2
        assert len(await d.find_signers("spend")) == 7


async def test_expired_records_disappear():
    async with network(N_NODES) as nodes:
        short = [make_ad(i, ttl=3.0) for i in range(5)]  # publish + a 16-shard sweep fit in 3 s
        long = [make_ad(10 + i, ttl=60) for i in range(5)]
        await publish_signers(nodes, short + long)
        d = Discovery(nodes[-1])
        assert len(await d.find_signers("spend")) == 10
        await asyncio.sleep(max(0.0, max(a.expires_at for a in short) - time.time()) + 0.2)
        found = await d.find_signers("spend")
        assert {a.owner for a in found} == {a.owner for a in long}
        # the nodes' prune loops (0.2 s here) dropped the expired copies
        assert await wait_until(lambda: all(
            all(r.expires_at > r.created_at + 2 for r in n.records.get(SPEND)) and
            n.stats.get("records", 0) <= 5 for n in nodes), timeout=2)
        assert sum(n.stats.get("pruned", 0) for n in nodes) >= 5


async def test_republish_keeps_a_record_alive_past_its_first_ttl():
    async with network(N_NODES) as nodes:
        own = OwnRecords(margin=0.6)
        first = make_ad(1, ttl=1.0)
        own.put(seckey(1), first)
        other = make_ad(2, ttl=1.0)  # not republished: must vanish
        await nodes[1].publish(other)
        nodes[0].start_republishing(own.current, interval=0.25)
        d = Discovery(nodes[-1])
        assert await wait_until(lambda: _has(d, first.owner))
        await asyncio.sleep(2.0)  # two full TTLs later
        found = await d.find_signers("spend")
        assert [a.owner for a in found] == [first.owner]
        assert found[0].seq > first.seq and found[0].expires_at > first.expires_at + 1
        assert nodes[0].stats["republished"] >= 4


async def _has(d: Discovery, owner: bytes) -> bool:
    return any(a.owner == owner for a in await d.find_signers("spend"))


async def test_signing_requests_found_by_each_addressed_key():
    async with network(N_NODES) as nodes:
        keys = [plain_pubkey(seckey(i)) for i in range(3)]
        req = SigningRequest.create(seckey(0), keys=keys, messages=[bytes(range(32))],
                                    payload=b"\x00encrypted-psbt" * 40, host="127.0.0.1", port=5555, chain=REGTEST)
        other = SigningRequest.create(seckey(9), keys=[plain_pubkey(seckey(9)), keys[2]],
                                      messages=[bytes(32)], chain=REGTEST)
        assert await nodes[3].publish(req) >= FAST.ksize
        assert await nodes[4].publish(other) >= FAST.ksize // 2
        d = Discovery(nodes[-1])
        assert await d.find_requests_for(keys[1]) == [req]
        assert {r.request_id for r in await d.find_requests_for(keys[2])} == {req.request_id, other.request_id}
        assert await d.find_requests_for(keys[2][1:]) == await d.find_requests_for(keys[2])  # x-only
        assert await d.find_requests_for(plain_pubkey(seckey(7))) == []
        got = (await d.find_requests_for(keys[1]))[0]
        assert got.payload == req.payload and got.endpoint.port == 5555
        assert len(await nodes[0].lookup(topic_for_requests(keys[1], chain=REGTEST))) == 1


async def test_watch_emits_signer_discovered_for_new_ads_only_once():
    async with network(N_NODES) as nodes:
        d = Discovery(nodes[-1])
        seen_cb, seen_ev, withdrawn = [], [], []
        d.on("signer:discovered", lambda advertisement, tx_type: seen_ev.append(advertisement.owner))
        d.on("signer:withdrawn", lambda owner, withdrawal: withdrawn.append(owner))
        await publish_signers(nodes, [make_ad(0), make_ad(1)])
        watch = d.watch_signers("spend", lambda ad: seen_cb.append(ad.owner), interval=0.1)
        assert await wait_until(lambda: len(seen_cb) == 2)
        late = make_ad(2)
        await nodes[5].publish(late)
        assert await wait_until(lambda: late.owner in seen_cb)
        await nodes[5].publish(make_ad(2, seq=late.seq + 1, nickname="update"))  # not "new"
        await nodes[6].publish(make_ad(3, tx_types=("swap",)))                 # other type
        await asyncio.sleep(0.4)
        assert sorted(seen_cb) == sorted(seen_ev) == sorted(plain_pubkey(seckey(i)) for i in range(3))
        await nodes[2].publish(Withdrawal.for_advertisement(seckey(1), make_ad(1)))
        assert await wait_until(lambda: withdrawn == [plain_pubkey(seckey(1))])
        watch.cancel()
        d.stop_watching()
        try:
            d.on("signer:bogus", print)
        except ValueError:
            pass
        else:
            raise AssertionError("unknown event accepted")


async def test_lookup_merges_newest_across_nodes_holding_different_versions():
    async with network(N_NODES) as nodes:
        old = make_ad(1, seq=1_000)
        new = make_ad(1, seq=2_000, nickname="newer")
        await nodes[0].publish(old)
        # one node closest to the topic holds only the newer version
        closest = await nodes[0].closest_nodes(SPEND)
        holder = next(n for n in nodes if n.node_id == closest[0].id)
        holder.records._topics.pop(SPEND)
        holder.records._total = 0
        assert holder.records.put(SPEND, new) == "stored"
        found = await Discovery(nodes[-1]).find_signers("spend")
        assert len(found) == 1 and found[0].seq == 2_000 and found[0].nickname == "newer"
        assert isinstance(found[0], Advertisement)


async def test_records_beyond_one_datagram_are_paged():
    """A topic holding more than one reply's worth of records is fetched page by page."""
    import dataclasses
    small_pages = dataclasses.replace(FAST, max_response_bytes=1500)
    async with network(N_NODES, small_pages) as nodes:
        ads = [make_ad(i) for i in range(20)]  # ~200 bytes each: 3+ pages per node
        await publish_signers(nodes, ads)
        holder = max(nodes, key=lambda n: len(n.records.get(SPEND)))
        assert len(holder.records.get(SPEND)) == 20
        cookie = holder.protocol.cookie(nodes[1].address)
        page = holder.protocol.rpc_find_records(nodes[1].address, nodes[1].node_id, SPEND, 0, cookie)
        assert page["next"] is not None and 0 < len(page["records"]) < 20
        assert sum(len(r) + 5 for r in page["records"]) <= 1500
        found = await Discovery(nodes[-1]).find_signers("spend")
        assert {a.owner for a in found} == {a.owner for a in ads}


async def test_events_forwarded_to_the_coordinator_event_hub():
    from musig2_plugin.foundation.events import EventEmitter
    hub = EventEmitter()
    got = []
    hub.on("signer:advertised", lambda **kw: got.append(("advertised", kw["advertisement"].owner)))
    hub.on("signer:discovered", lambda **kw: got.append(("discovered", kw["advertisement"].owner)))
    hub.on("signer:withdrawn", lambda **kw: got.append(("withdrawn", kw["owner"])))
    async with network(N_NODES) as nodes:
        d = Discovery(nodes[-1], emitter=hub)
        ad = make_ad(1)
        assert await Discovery(nodes[2], emitter=hub).advertise(ad) >= FAST.ksize // 2
        watch = d.watch_signers("spend", None, interval=0.1)
        assert await wait_until(lambda: ("discovered", ad.owner) in got)
        await Discovery(nodes[2], emitter=hub).withdraw(Withdrawal.for_advertisement(seckey(1), ad))
        # the hub delivers on the loop (call_soon), hence the wait
        assert await wait_until(lambda: ("withdrawn", ad.owner) in got)
        watch.cancel()
        assert got[0] == ("advertised", ad.owner)


async def test_neighbors_of_any_target_come_from_the_whole_routing_table():
    """Regression: kademlia's RoutingTable.find_neighbors can return one contact or none when
    the target's bucket is last and its left neighbour empty; our seeds must not."""
    import os
    async with network(N_NODES) as nodes:
        for node in nodes:
            contacts = [n for b in node.protocol.router.buckets for n in b.get_nodes()]
            for _ in range(20):
                target = Node(os.urandom(20))
                got = node.protocol.neighbors(target)
                assert len(got) == min(FAST.ksize, len(contacts))
                dist = [n.distance_to(target) for n in got]
                assert dist == sorted(dist)
                worst = dist[-1]
                assert all(c.distance_to(target) >= worst for c in contacts if c not in got)


async def test_update_that_drops_a_type_replaces_the_old_version_there():
    async with network(N_NODES) as nodes:
        d = Discovery(nodes[-1])
        v1 = make_ad(1, tx_types=("spend", "swap"), seq=100)
        assert await Discovery(nodes[1]).advertise(v1) >= FAST.ksize
        assert [a.owner for a in await d.find_signers("swap")] == [v1.owner]
        v2 = make_ad(1, tx_types=("spend",), seq=101, nickname="spend only")
        await Discovery(nodes[1]).advertise(v2, previous=v1)
        assert await d.find_signers("swap") == []
        assert [a.nickname for a in await d.find_signers("spend")] == ["spend only"]
        # a record may not be pushed under a topic it can never belong to
        req = SigningRequest.create(seckey(1), keys=[plain_pubkey(seckey(2))], messages=[bytes(32)], chain=REGTEST)
        try:
            await nodes[1].publish(req, also_topics=[SPEND])
        except ValueError:
            pass
        else:
            raise AssertionError("request published under a signer topic")


async def test_withdrawal_through_republishing_takes_effect_within_one_interval():
    async with network(N_NODES) as nodes:
        own = OwnRecords(margin=2.0)
        ad = make_ad(4, ttl=30)
        own.put(seckey(4), ad)
        nodes[4].start_republishing(own.current, interval=0.3)
        d = Discovery(nodes[-1])
        assert await wait_until(lambda: _has(d, ad.owner))
        own.put(seckey(4), Withdrawal.for_advertisement(seckey(4), ad))  # replaces the slot
        assert await wait_until(lambda: _gone(d, ad.owner), timeout=3)  # interval is 0.3 s
        assert any(isinstance(r, Withdrawal) and r.owner == ad.owner
                   for n in nodes for r in n.records.get(SPEND))  # the republisher sent it


async def _gone(d: Discovery, owner: bytes) -> bool:
    return not await _has(d, owner)
