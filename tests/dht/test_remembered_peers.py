"""Remembered peers (peers.dat): a node restarted without any bootstrap setting rejoins through
the peers it remembered, even after the node it first bootstrapped from is gone; a corrupt,
foreign or oversized peers file never stops a node."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from dht_netutil import FAST, make_ad, network
from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.dht import DhtNode, Discovery, PeersFile
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST, TESTNET


def test_peers_file_roundtrip_bounds_and_order(tmp_path):
    pf = PeersFile(tmp_path / "sub" / "peers.json", "regtest", max_peers=3)
    assert pf.load() == [] and pf.problem is None                 # no file yet: nothing wrong
    pf.node_id = bytes(range(20))
    pf.remember([("127.0.0.1", 1), ("127.0.0.1", 2)])
    pf.remember([("127.0.0.1", 3), ("127.0.0.1", 1)])
    pf.remember([("127.0.0.1", 4)])
    assert pf.peers == [("127.0.0.1", 4), ("127.0.0.1", 3), ("127.0.0.1", 1)]
    pf.save()
    again = PeersFile(tmp_path / "sub" / "peers.json", "regtest")
    assert again.load() == pf.peers and again.node_id == bytes(range(20))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["peers.json"]   # no temp left


@pytest.mark.parametrize("content, why", [
    ("{not json", "not JSON"),
    (json.dumps({"version": 99, "chain": "regtest", "peers": []}), "format version"),
    (json.dumps({"version": C.PEERS_FILE_VERSION, "chain": "testnet", "peers": [["h", 1]]}),
     "chain 'testnet'"),
    ("[" + "1," * (C.MAX_PEERS_FILE_BYTES // 2) + "1]", "more than"),
])
def test_an_unusable_peers_file_is_ignored_with_a_reason(tmp_path, content, why):
    path = tmp_path / "peers.json"
    path.write_text(content)
    pf = PeersFile(path, "regtest")
    assert pf.load() == [] and why in pf.problem
    pf.remember([("127.0.0.1", 5)])
    pf.save()                                                      # replaced by a good one
    assert PeersFile(path, "regtest").load() == [("127.0.0.1", 5)]


def test_bad_entries_are_dropped_one_by_one(tmp_path):
    path = tmp_path / "peers.json"
    entries = [["127.0.0.1", 7], ["127.0.0.1", 0], ["127.0.0.1", 70000], [5, 5], ["x", True],
               ["h" * 300, 9], "junk", ["127.0.0.1"], ["127.0.0.1", 7], ["::1", 8]]
    path.write_text(json.dumps({"version": C.PEERS_FILE_VERSION, "chain": "regtest",
                                "node_id": "zz" * 20, "peers": entries}))
    pf = PeersFile(path, "regtest")
    assert pf.load() == [("127.0.0.1", 7), ("::1", 8)] and pf.node_id is None


async def test_a_dht_node_restarted_without_bootstrap_rejoins_through_remembered_peers(tmp_path):
    path = tmp_path / "peers.json"
    async with network(8) as nodes:
        ads = [make_ad(i) for i in range(3)]
        for node, ad in zip(nodes[2:5], ads):
            await node.publish(ad)
        first = DhtNode(FAST, chain=REGTEST, peers_file=PeersFile(path, "regtest"))
        await first.start(bootstrap=[nodes[0].address])
        node_id = first.node_id
        assert len(first.contacts()) >= 3
        await first.stop()                                  # saves the routing table
        remembered = PeersFile(path, "regtest").load()
        assert len(remembered) >= 3 and nodes[0].address in remembered
        await nodes[0].stop()                               # the bootstrap node is gone
        again = DhtNode(FAST, chain=REGTEST, peers_file=PeersFile(path, "regtest"))
        try:
            await again.start()                             # no bootstrap setting at all
            assert again.node_id == node_id                 # its old place in the network
            assert len(again.contacts()) >= 3
            found = await Discovery(again).find_signers("spend")
            assert {a.owner for a in found} == {a.owner for a in ads}
        finally:
            await again.stop()


async def test_without_remembered_peers_a_node_without_bootstrap_stays_alone(tmp_path):
    """The control: the rejoin above is the peers file's doing."""
    async with network(4) as nodes:
        await nodes[1].publish(make_ad(1))
        alone = DhtNode(FAST, chain=REGTEST, peers_file=PeersFile(tmp_path / "p.json", "regtest"))
        try:
            await alone.start()
            assert alone.contacts() == []
            assert await Discovery(alone).find_signers("spend") == []
        finally:
            await alone.stop()


async def test_a_wallet_node_restarted_without_bootstrap_finds_signers_again(tmp_path):
    """The coordinator level: same key, same peers file, no bootstrap on the second start."""
    from musig2_plugin.dht import DhtConfig
    dht = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)
    seed = Musig2Node(os.urandom(32), chain=TESTNET, dht_config=dht)
    signers = [Musig2Node(os.urandom(32), chain=TESTNET, dht_config=dht) for _ in range(3)]
    sk = os.urandom(32)
    me = Musig2Node(sk, chain=TESTNET, dht_config=dht, peers_path=tmp_path / "peers.json")
    await seed.start(dht=True, public_host="203.0.113.1")
    for i, s in enumerate(signers):
        await s.start(dht=True, bootstrap=[seed.dht_address], public_host=f"203.0.113.{i + 2}")
        await s.advertise_signer(nickname=f"s{i}")
    try:
        await me.start(dht=True, bootstrap=[seed.dht_address])
        assert len(await me.find_available_signers()) == 3
        await me.stop()
        await seed.stop()
        me = Musig2Node(sk, chain=TESTNET, dht_config=dht, peers_path=tmp_path / "peers.json")
        await me.start(dht=True)
        found = await me.find_available_signers()
        assert {a.owner for a in found} == {s.pubkey for s in signers}
    finally:
        await asyncio.gather(me.stop(), *(s.stop() for s in signers))
