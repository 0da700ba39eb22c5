"""Two chains in one DHT: testnet and regtest nodes route together, yet each finds only its own
chain's signers and requests, and a request or message of the other chain is refused (typed,
counted). Real Musig2Nodes: aiorpcx sessions and kademlia on 127.0.0.1."""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.chain import REGTEST, TESTNET
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.coordinator import Musig2Node, WrongChainRequest, request_key
from musig2_plugin.dht import DhtConfig
from musig2_plugin.records import SigningRequest
from musig2_plugin.transport import MsgType, PeerIgnored, PeerRefused, WrongChainMessage

CFG = Musig2Config().with_(round_timeout=2.0, coordinator_grace=1.0, heartbeat_interval=0.5)
DHT = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)


@pytest.fixture
async def two_chains():
    """Three testnet and three regtest nodes, all joined through the first (a testnet node).

    Testnet never publishes loopback endpoints: those nodes claim documentation-range public
    hosts (nobody connects to them here: the requests below are pushed to known endpoints)."""
    nodes = [Musig2Node(os.urandom(32), chain=chain, config=CFG, dht_config=DHT)
             for chain in (TESTNET, TESTNET, TESTNET, REGTEST, REGTEST, REGTEST)]
    for i, node in enumerate(nodes):
        public = f"198.51.100.{i + 1}" if node.chain is TESTNET else None
        await node.start(dht=True, bootstrap=[nodes[0].dht_address] if i else [],
                         public_host=public)
    for node in nodes[1:]:                      # a second walk fills the early tables
        await node.dht.bootstrap([nodes[-1].dht_address])
    for i, node in enumerate(nodes):
        await node.advertise_signer(nickname=f"{node.chain.name}-{i}")
    yield nodes[:3], nodes[3:]
    await asyncio.gather(*(n.stop() for n in nodes))


async def test_each_chain_finds_only_its_own_signers(two_chains):
    testnet, regtest = two_chains
    for mine, theirs in ((testnet, regtest), (regtest, testnet)):
        for node in mine:
            found = await node.find_available_signers(include_self=True)
            # every signer of our chain is found; in a full pytest run, same-chain signers of
            # other tests' networks may be reachable through reused loopback ports: allowed
            assert {n.pubkey for n in mine} <= {a.owner for a in found}
            assert all(a.chain_id == node.chain.id for a in found)
            assert not {a.owner for a in found} & {n.pubkey for n in theirs}
    # one DHT: nodes hold the other chain's records too (under that chain's topics only),
    # which is what keeps a minority chain's records alive in a shared DHT ...
    assert sum(n.dht.stats.get("held_other_chain", 0) for n in testnet + regtest) > 0
    # ... yet no lookup ever returns them: the topics differ, and a record of another chain
    # served under our topic (a lying peer) is refused and counted (test_dht_attacks.py)
    for node in testnet + regtest:
        foreign = {t for t in node.dht.records.topics()
                   if any(r.chain_id != node.chain.id for r in node.dht.records.get(t))}
        for topic in foreign:
            assert await node.dht.lookup(topic) == []    # held here, never handed to this chain


async def test_a_request_of_the_other_chain_is_refused_typed_and_counted(two_chains):
    testnet, regtest = two_chains
    alice, bob = testnet[0], regtest[0]
    alice.add_peer(bob.pubkey, bob.endpoint)
    keys = [alice.pubkey, bob.pubkey]
    msg = os.urandom(32)
    # pushed: the handshake already tells alice that bob's listener is of another chain, so
    # the push is not even sent (counted on her side, bob ignored for his key from now on)
    record = await alice.announce_signing_request(keys, [msg], app_data=b"psbt")
    assert record.chain_id == TESTNET.id
    assert alice.transport.pool.guard.stats["handshake_failed"] == 1
    assert request_key(record) not in bob.requests
    # stored in the DHT under testnet topics: bob (regtest) never finds it
    assert await bob.find_signing_requests_for_me() == []
    # handed over out of band: still refused, nothing registered, nothing signed
    with pytest.raises(WrongChainRequest, match="testnet"):
        await bob.join_signing_request(record)
    assert bob.requests == {} and len(bob.sessions.specs) == 0
    with pytest.raises(WrongChainRequest):
        bob.known_request(record)
    # pushed raw (no handshake, as a hostile sender would): refused typed, counted
    with pytest.raises(PeerRefused, match="chain testnet, not of regtest"):
        await alice.transport.push_request(bob.endpoint, record.encode())
    assert bob.transport.refusals.get("WrongChainRequest") == 1
    assert bob.requests == {}


async def test_a_session_message_of_the_other_chain_is_refused_before_its_signature(two_chains):
    testnet, regtest = two_chains
    alice, bob, carol = testnet[0], regtest[0], regtest[1]
    # a genuine regtest session between bob and carol
    bob.add_peer(carol.pubkey, carol.endpoint)
    record = await bob.announce_signing_request([bob.pubkey, carol.pubkey], [os.urandom(32)])
    sid = bob.requests[request_key(record)].specs[0].session_id
    await bob.join_signing_request(record, auto=False)
    # alice (testnet) signs a JOIN for that session id: her envelope names testnet
    env = alice.transport.seal(MsgType.JOIN, sid, b"{}")
    with pytest.raises(PeerIgnored, match="another chain"):        # the handshake says so
        await alice.transport.send(bob.endpoint, env, to=bob.pubkey)
    with pytest.raises(PeerRefused, match="WrongChainMessage"):   # sent raw: refused, counted
        await alice.transport.send(bob.endpoint, env)
    assert bob.transport.refusals.get("WrongChainMessage") == 1
    with pytest.raises(WrongChainMessage):
        await bob.transport.accept(env.encode())
    assert bob.transport.refusals.get("WrongChainMessage") == 2


async def test_a_record_signed_for_one_chain_cannot_be_posted_as_another():
    """Same key, same content, other chain: a different record with a different request key,
    so even the key holder cannot carry signatures across chains."""
    sk = os.urandom(32)
    node = Musig2Node(sk, chain=REGTEST, config=CFG)
    kwargs = dict(keys=[node.pubkey], messages=[bytes(32)], request_id=bytes(32), seq=1, now=1e9)
    a = SigningRequest.create(sk, chain=REGTEST, **kwargs)
    b = SigningRequest.create(sk, chain=TESTNET, **kwargs)
    assert a.signature != b.signature and request_key(a) != request_key(b)
    assert set(a.topics()).isdisjoint(b.topics())
