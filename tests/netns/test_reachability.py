"""Reachability on the test internet: dial-back tells a port-forwarded node from masqueraded
ones, the unreachable ones sign through a relay, and they move off a relay that drops.

Real parts only: kernel namespaces and nft NAT (tests/harness/netns.py), one Musig2Node
process per machine (tests/harness/natnode.py), real aiorpcx connections across the NATs.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.harness.natnode import NatNode
from tests.harness.netns import Internet, NatKind

pytestmark = [pytest.mark.netns, pytest.mark.slow]
PORT = 7800


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _sign(creator: NatNode, signers: list[NatNode]) -> str:
    for a in signers:
        for b in signers:
            if a is not b:
                a.call("add_peer", key=b.pubkey, endpoint=b.call("info")["advertised"])
    record = creator.call("announce", keys=[n.pubkey for n in signers], msg=os.urandom(32).hex(),
                          app_data=b"psbt across NATs".hex())
    sids = [n.call("join", record=record) for n in signers]
    assert len({tuple(s) for s in sids}) == 1
    sigs = {n.call("final", sid=sids[0][0], timeout=60) for n in signers}
    assert len(sigs) == 1
    return sigs.pop()


def test_dialback_then_relays_across_three_kinds_of_nat(internet: Internet, tmp_path: Path) -> None:
    r1h, r2h = internet.add_public("relay1"), internet.add_public("relay2")
    fwd = internet.add_home("fwd", NatKind.FORWARD, hosts=["alice"], forward_ports=[PORT])
    masq = internet.add_home("masq", NatKind.MASQUERADE, hosts=["bob", "bob2"])
    rnd = internet.add_home("rnd", NatKind.RANDOM, hosts=["carol"])
    relay1 = NatNode(r1h, tmp_path, port=PORT, relay=True, name="relay")
    relay2 = NatNode(r2h, tmp_path, port=PORT, relay=True, name="relay")
    alice, bob, bob2, carol = (NatNode(internet.host(n), tmp_path, port=PORT, name="signer")
                               for n in ("alice", "bob", "bob2", "carol"))
    peers = [[r1h.ip, PORT], [r2h.ip, PORT]]

    # Dial-back: the port forward is confirmed, and the node advertises its router's address.
    a = alice.call("learn", peers=peers)
    assert a["reachable"] and a["public_ip"] == fwd.public_ip
    assert a["advertised"] == [fwd.public_ip, PORT]
    # Masquerade and random mapping: seen from the router's address, but nobody gets in.
    for node, home in ((bob, masq), (bob2, masq), (carol, rnd)):
        before = node.call("info")["advertised"]
        r = node.call("learn", peers=peers)
        assert r["public_ip"] == home.public_ip and not r["reachable"], (node.host.name, r)
        assert r["advertised"] == before != [home.public_ip, PORT]   # not advertised as direct
    # The random-port NAT shows each peer another source port (symmetric-style mapping).
    c_seen = carol.call("learn", peers=peers)["seen"]
    assert c_seen[0][1] != c_seen[1][1]

    # Direct connections into the NATed homes fail; into the port forward they work.
    assert alice.call("ping", key=bob.pubkey, endpoint=[masq.public_ip, PORT]) \
        .startswith("PeerUnreachable")
    assert alice.call("ping", key=carol.pubkey, endpoint=[rnd.public_ip, PORT]) \
        .startswith("PeerUnreachable")
    assert bob.call("ping", key=alice.pubkey, endpoint=[fwd.public_ip, PORT]) == "delivered"

    # The unreachable ones reserve at relay1 and advertise "through relay1".
    for node in (bob, bob2, carol):
        assert node.call("use_relays", relays=[relay1.relay_endpoint(),
                                               relay2.relay_endpoint()]) == [relay1.relay_endpoint()]
        assert node.call("info")["advertised"] == relay1.relay_endpoint()

    # A 4-of-4 session: alice direct, bob and bob2 (behind one NAT) and carol through relay1.
    _sign(alice, [alice, bob, bob2, carol])
    stats = relay1.call("relay_stats")
    for node in (bob, bob2, carol):
        assert stats["per_client"][node.pubkey][0] > 0
    assert alice.pubkey not in stats["per_client"]
    assert relay1.call("relay_stats")["refusals"] == {}

    # relay1 turns hostile and swallows frames: a sender through it fails, naming it ...
    assert alice.call("ping", key=bob.pubkey, endpoint=relay1.relay_endpoint()) == "delivered"
    relay1.call("set_relay_drop", drop=True)
    failed = alice.call("ping", key=bob.pubkey, endpoint=relay1.relay_endpoint())
    assert failed.startswith("RelayUnreachable: ") and \
        f"relay {relay1.pubkey[:16]}@{r1h.ip}:{PORT}" in failed, failed
    # ... and the clients' probes move them to relay2, which they now advertise.
    for node in (bob, bob2, carol):
        _wait(lambda n=node: n.call("info")["relays"] == [relay2.relay_endpoint()], 30,
              f"{node.host.name} to move to relay2")
        assert node.call("info")["advertised"] == relay2.relay_endpoint()
    _sign(carol, [alice, bob, carol])
    assert relay2.call("relay_stats")["per_client"][carol.pubkey][0] > 0



def test_unreachable_nodes_stay_out_of_dht_routing_tables(internet: Internet,
                                                            tmp_path: Path) -> None:
    """After reach_out found them unreachable, the NATed nodes use the DHT in client mode:
    they still store and look up, but no public node keeps their (useless) address."""
    r1h = internet.add_public("relay1")
    fwd = internet.add_home("fwd", NatKind.FORWARD, hosts=["alice"], forward_ports=[PORT])
    masq = internet.add_home("masq", NatKind.MASQUERADE, hosts=["bob"])
    rnd = internet.add_home("rnd", NatKind.RANDOM, hosts=["carol"])
    relay1 = NatNode(r1h, tmp_path, port=PORT, relay=True, dht=True, name="relay")
    boot = (f"{r1h.ip}:{PORT}",)
    # Wallet nodes join as DHT clients until a dial-back proves them reachable (as the plugin
    # does for a node listening beyond loopback).
    alice, bob, carol = (NatNode(internet.host(n), tmp_path, port=PORT, dht=True, bootstrap=boot,
                                 dht_client=True, name="signer")
                         for n in ("alice", "bob", "carol"))
    summaries = {n.host.name: n.call("reach", peers=[[r1h.ip, PORT]]) for n in (alice, bob, carol)}
    assert {k: (v["path"], v["dht_client_mode"]) for k, v in summaries.items()} == {
        "alice": ("direct", False), "bob": ("relay", True), "carol": ("relay", True)}
    for n in (alice, bob, carol):
        n.call("advertise", nickname=n.host.name)
    # everyone finds everyone's advertisement: storing and looking up work in client mode
    for n in (alice, bob, carol):
        found = set(n.call("find")["found"])
        others = {alice.pubkey, bob.pubkey, carol.pubkey} - {n.pubkey}
        assert others <= found, n.host.name
    contacts = {tuple(c) for c in relay1.call("dht_contacts")}
    assert (fwd.public_ip, PORT) in contacts            # reachable: a useful contact
    assert not {c for c in contacts if c[0] in (masq.public_ip, rnd.public_ip)}, contacts
