"""Churn: 30% of the nodes stop; discovery still returns >= 95% of live signers' ads."""
from __future__ import annotations

import asyncio
import random

from kademlia.node import Node

from dht_netutil import FAST, make_ad, network, wait_until
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.dht import DhtNode, Discovery, topic_for_type

SPEND = topic_for_type("spend", REGTEST, 0)

N_NODES = 40
N_SIGNERS = 40


async def test_discovery_survives_thirty_percent_churn():
    async with network(N_NODES, seed=7) as nodes:
        searcher = nodes[-1]
        # signer i lives on node i % (N-1); its advertisement is published from there
        homes = {i: nodes[i % (N_NODES - 1)] for i in range(N_SIGNERS)}
        ads = {i: make_ad(i) for i in range(N_SIGNERS)}
        await asyncio.gather(*(homes[i].publish(ads[i]) for i in ads))
        assert len(await Discovery(searcher).find_signers("spend")) == N_SIGNERS

        rng = random.Random(3)
        victims = rng.sample(nodes[:-1], int(0.3 * N_NODES))
        for node in victims:
            await node.stop()
        live = {ads[i].owner for i in ads if homes[i] not in victims}
        assert 0 < len(live) < N_SIGNERS

        found = {a.owner for a in await Discovery(searcher).find_signers("spend")}
        assert len(found & live) >= 0.95 * len(live), (len(found & live), len(live))
        # (ads of stopped signers may still be served until they expire: that is fine)
        # the surviving nodes keep answering; a second lookup is not slower to converge
        again = {a.owner for a in await Discovery(nodes[0] if nodes[0] not in victims else searcher)
                 .find_signers("spend")}
        assert len(again & live) >= 0.95 * len(live)
        assert searcher.stats["contacts"] <= N_NODES - 1
        assert FAST.rpc_timeout <= 1  # dead contacts cost a short timeout here, not rpcudp's 5 s


async def test_node_that_lost_every_contact_rejoins_through_its_bootstrap_nodes():
    async with network(20) as nodes:
        ads = [make_ad(i) for i in range(5)]
        for i, ad in enumerate(ads):
            await nodes[i].publish(ad)
        loner = DhtNode(FAST, chain=REGTEST)
        await loner.start(bootstrap=[nodes[3].address])
        try:
            assert loner.stats["contacts"] > 1
            await asyncio.sleep(0.5)  # replication pushes to the newcomer are over
            loner.protocol.router.flush()  # every contact gone (e.g. the host was offline)
            found = await Discovery(loner).find_signers("spend")
            assert {a.owner for a in found} == {a.owner for a in ads}
            assert loner.stats["rejoins"] == 1 and loner.stats["contacts"] > 1
        finally:
            await loner.stop()


async def test_newcomer_close_to_a_topic_receives_copies():
    """Replication to newcomers (paper, section 2.5): a node that joins receives records
    of topics it is now among the closest for, without any republish."""
    async with network(12) as nodes:
        ads = [make_ad(i) for i in range(6)]
        for i, ad in enumerate(ads):
            await nodes[i].publish(ad)
        target = Node(SPEND)
        # a newcomer whose id is almost the topic: the closest node of all
        newcomer = DhtNode(FAST, node_id=SPEND[:-1] + bytes([SPEND[-1] ^ 1]), chain=REGTEST)
        await newcomer.start(bootstrap=[nodes[0].address])
        try:
            assert all(newcomer.contact.distance_to(target) < n.contact.distance_to(target) for n in nodes)
            assert await wait_until(lambda: len(newcomer.records.get(SPEND)) == len(ads), timeout=5)
        finally:
            await newcomer.stop()
