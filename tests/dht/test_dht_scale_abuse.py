"""Issue 15 regressions: topics that scale, storage and ranking an address cannot buy,
no amplification, joins that do not wait on the dead.

Real UDP nodes on 127.0.0.1, real records and signatures. Items 1-4 of the issue each
have a test here that failed on the code before the fix (topic capped at one key and
silent refusals; first-come topic fill and ranking by advertised reputation; replies
and pushes to unproven sources; bootstrap crawl waiting a full timeout per round).
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import statistics
import time

import umsgpack

from dht_netutil import FAST, make_ad, network, seckey, wait_until
from musig2_plugin.dht import DhtNode, Discovery
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.records import shard_of, topic_for_type

SPEND0 = topic_for_type("spend", REGTEST, 0)


# -- item 1: topics that scale; refusals reported, retried elsewhere --------------------
async def test_more_signers_than_one_topic_holds_are_all_found():
    """Before: one topic per type capped at max_records_per_topic; 40 signers, cap 8 -> 8 found."""
    small = dataclasses.replace(FAST, max_records_per_topic=8)
    async with network(20, small) as nodes:
        ads = [make_ad(i, key=seckey(i // 16, shard=i % 16)) for i in range(40)]  # <= 3 per shard
        assert len({shard_of(a.owner) for a in ads}) == 16
        results = await asyncio.gather(*(nodes[i % 19].publish(a) for i, a in enumerate(ads)))
        assert all(int(r) >= 5 for r in results)
        found = await Discovery(nodes[-1]).find_signers("spend")
        assert {a.owner for a in found} == {a.owner for a in ads}
        # sampling returns max_results without reading every shard
        some = await Discovery(nodes[-1]).find_signers("spend", max_results=5)
        assert len(some) == 5 and {a.owner for a in some} <= {a.owner for a in ads}
        assert max(len(n.records) for n in nodes) <= 16 * 8


async def test_full_shard_is_reported_to_the_publisher_and_retried_elsewhere():
    """Before: advertise returned a bare count (0 when every store was refused), no event."""
    tiny = dataclasses.replace(FAST, max_records_per_topic=3, ksize=5)
    async with network(16, tiny) as nodes:
        for i in range(3):
            await nodes[i].publish(make_ad(i))
        late = make_ad(3)
        disc = Discovery(nodes[5])
        events = []
        disc.on("signer:store-refused", lambda **kw: events.append(kw))
        result = await disc.advertise(late)
        assert result.refused.get("refused:topic_full", 0) >= 1, result.refused
        assert result.retried >= 1          # sent past the k closest after the refusals
        assert events and events[0]["refused"] == result.refused and events[0]["advertisement"] == late
        assert int(result) >= 1             # stored somewhere after all
        assert await Discovery(nodes[-1]).find_signer(late.owner, "spend") == late


# -- item 2: one address cannot fill a topic or buy rank ----------------------------------
async def test_one_address_flooding_a_shard_cannot_push_out_an_honest_signer():
    """Before: 300 ads from one address filled the topic (first-come); the honest signer
    published after the flood was refused everywhere, and ranking by advertised
    reputation put the flood first."""
    config = dataclasses.replace(FAST, max_records_per_topic=64, store_rate_per_minute=100_000,
                                 rpc_rate_per_second=100_000)
    async with network(24, config) as nodes:
        known = [make_ad(i, reputation=0, fee=500) for i in range(3)]
        for i, ad in enumerate(known):
            await nodes[i].publish(ad)
        attacker = nodes[10]
        closest = await attacker.closest_nodes(SPEND0)
        flood = [make_ad(200 + i, reputation=100, fee=0).encode() for i in range(300)]
        accepted = 0
        for node in closest:
            for i in range(0, len(flood), 25):
                replies = await asyncio.gather(*(attacker.protocol.call_store_record(node, SPEND0, d)
                                                 for d in flood[i:i + 25]))
                accepted += sum(1 for ok, s in replies if ok and s == "stored")
        quota = config.max_records_per_topic // C.DHT_SOURCE_SHARE_DIVISOR
        assert 0 < accepted <= quota * len(closest)
        assert sum(n.stats.get("refused:source_quota", 0) for n in nodes) > 0

        honest = make_ad(99, reputation=0, fee=800)   # published after the flood
        assert int(await nodes[3].publish(honest)) >= config.ksize // 2
        searchers = [n for n in nodes if n is not attacker][:20]
        hits = await asyncio.gather(*(Discovery(s).find_signer(honest.owner, "spend") for s in searchers))
        assert sum(h == honest for h in hits) >= 0.95 * len(searchers)

        # default order: what the searcher can check (its history, how long it has seen a
        # key) beats any claim; the flood advertises reputation 100 and fee 0
        past = {known[0].owner: (4, 0)}
        searcher = Discovery(nodes[-1], history=lambda owner: past.get(owner))
        for ad in known[1:]:
            searcher.continuity.seed(ad.owner, time.time() - 3600)
        ranked = await searcher.find_signers("spend")
        flood_owners = {make_ad(200 + i).owner for i in range(300)}
        assert [a.owner for a in ranked[:3]] == [a.owner for a in known]  # then by response time
        assert all(a.owner in flood_owners or a.owner == honest.owner for a in ranked[3:])


# -- item 3: no amplification ------------------------------------------------------------
def _request(name: str, args: list) -> bytes:
    return b"\x00" + os.urandom(20) + umsgpack.packb([name, args])


async def test_every_reply_to_an_unverified_source_is_no_larger_than_its_request():
    """Before: find_records answered 81 bytes with ~16 KB, find_node with 20 contacts."""
    async with network(12) as nodes:
        for i in range(40):
            await nodes[i % 11].publish(make_ad(i))
        target = max(nodes, key=lambda n: len(n.records))
        assert len(target.records) >= 30
        kinds = {
            "ping": lambda: [os.urandom(20)],
            "find_node": lambda: [os.urandom(20), SPEND0],
            "find_value": lambda: [os.urandom(20), SPEND0],
            "find_records": lambda: [os.urandom(20), SPEND0, 0],
            "find_records_slot": lambda: [os.urandom(20), SPEND0, b"S"],
            "store_record": lambda: [os.urandom(20), SPEND0, make_ad(77).encode()],
            "store": lambda: [os.urandom(20), os.urandom(20), b"v"],
            "leave": lambda: [os.urandom(20)],
        }
        loop = asyncio.get_running_loop()
        factors = {}
        for kind, args in kinds.items():
            name = "find_records" if kind == "find_records_slot" else kind
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # a fresh source
                sock.setblocking(False)
                sock.bind(("127.0.0.1", 0))
                data = _request(name, args())
                await loop.sock_sendto(sock, data, target.address)
                got = 0
                try:
                    while True:
                        got += len(await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.5))
                except asyncio.TimeoutError:
                    pass
                factors[kind] = got / len(data)
        assert all(f <= 1.0 for f in factors.values()), factors
        assert factors["ping"] > 0 and factors["find_records"] > 0  # they did answer (a cookie)


async def test_fresh_node_ids_get_no_pushes_and_do_not_enter_the_routing_table():
    """Before: 200 pings with fresh ids triggered thousands of store_record pushes."""
    async with network(10) as nodes:
        for i in range(20):
            await nodes[i % 9].publish(make_ad(i))
        target = nodes[0]
        contacts = target.stats["contacts"]
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(("127.0.0.1", 0))
            sent = 0
            for _ in range(200):
                data = _request("ping", [os.urandom(20)])
                sent += len(data)
                await loop.sock_sendto(sock, data, target.address)
            await asyncio.sleep(0.5)
            got, datagrams = 0, 0
            try:
                while True:
                    got += len(await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.2))
                    datagrams += 1
            except asyncio.TimeoutError:
                pass
        assert datagrams <= 200 and got <= sent          # only the ping answers
        assert target.stats["contacts"] == contacts       # none of the fresh ids was added
        assert len(target.protocol._outstanding) == 0     # nothing pushed, nothing pending


async def test_outstanding_rpcs_are_bounded_per_peer():
    bounded = dataclasses.replace(FAST, max_outstanding_per_peer=4, max_outstanding=6)
    node = DhtNode(bounded, chain=REGTEST)
    await node.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # never answers
            silent.bind(("127.0.0.1", 0))
            addr = silent.getsockname()
            calls = [node.protocol._call(addr, "ping", node.node_id) for _ in range(10)]
            busy = [c for c in calls if c.done()]
            assert len(busy) == 6 and all(c.result() == (False, "busy") for c in busy)
            assert len(node.protocol._outstanding) == 4
            other = [node.protocol._call(("127.0.0.1", addr[1] + 1), "ping", node.node_id)
                     for _ in range(4)]
            assert sum(c.done() for c in other) == 2          # the total bound (6)
            assert node.stats["refused:outstanding_full"] == 8
    finally:
        await node.stop()


# -- item 4: joins after churn ----------------------------------------------------------
async def test_node_started_after_a_hundred_left_joins_and_advertises_quickly():
    """Before: kademlia's bootstrap crawl waited a full RPC timeout per round for dead
    contacts that long-lived nodes kept handing out: 14 s at a 2 s timeout. Here half
    of the leavers vanish without a word (crash) and half say leave."""
    config = dataclasses.replace(FAST, rpc_timeout=2.0)
    async with network(20, config) as core:
        transient = []
        for i in range(100):
            node = DhtNode(config, chain=REGTEST)
            await node.start(bootstrap=[core[i % 20].address])
            transient.append(node)
        for i, node in enumerate(transient):
            if i % 2:
                await node.stop()                      # tells its neighbours
            else:
                node.server.transport.close()          # crashes: says nothing
                node.server.protocol.cancel_outstanding()
                for task in list(node._tasks):
                    task.cancel()
        assert sum(n.stats.get("neighbours_left", 0) for n in core) > 0
        times = []
        for i in range(5):
            newcomer = DhtNode(config, chain=REGTEST)
            t0 = time.perf_counter()
            await newcomer.start(bootstrap=[core[i].address])
            await Discovery(newcomer).advertise(make_ad(300 + i))
            times.append(time.perf_counter() - t0)
            await newcomer.stop()
        # loose bound for a loaded CI machine (docs have the figure); before: 14 s
        assert statistics.median(times) < 3.0, times


async def test_bad_bootstrap_address_is_refused_and_the_socket_survives():
    """A (None, None) address reached sendto and asyncio closed the node's socket."""
    node = DhtNode(FAST, chain=REGTEST)
    await node.start()
    other = DhtNode(FAST, chain=REGTEST)
    await other.start()
    try:
        for bad in ([(None, None)], [("not-an-ip", 1)], [("127.0.0.1", 0)]):
            try:
                await node.bootstrap(bad)
            except ValueError:
                pass
            else:
                raise AssertionError(f"{bad} accepted")
        assert await node.bootstrap([other.address]) >= 1
        ok, _ = await node.protocol.ping(other.address, node.node_id)
        assert ok
    finally:
        await node.stop()
        await other.stop()
