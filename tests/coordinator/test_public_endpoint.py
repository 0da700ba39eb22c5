"""Listen address vs. published endpoint, with real nodes: a node listening on 0.0.0.0 never
advertises that (nor a loopback/private address) on a non-regtest chain; what it publishes is
its public host; on regtest it publishes loopback and peers really reach it there."""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation.chain import MAINNET, REGTEST, SIGNET, TESTNET
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.coordinator import Musig2Node, NoPublicEndpoint
from musig2_plugin.dht import DhtConfig
from musig2_plugin.records import decode_record
from musig2_plugin.transport import EndpointNotPublic

CFG = Musig2Config().with_(round_timeout=2.0, coordinator_grace=1.0, heartbeat_interval=0.5)
DHT = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)


@pytest.mark.parametrize("chain", [MAINNET, TESTNET, SIGNET])
async def test_all_interfaces_is_never_advertised_on_a_real_chain(chain):
    seed = Musig2Node(os.urandom(32), chain=chain, config=CFG, dht_config=DHT)
    node = Musig2Node(os.urandom(32), chain=chain, config=CFG, dht_config=DHT)
    await seed.start("127.0.0.1", dht=True, public_host="203.0.113.10")
    await node.start("0.0.0.0", dht=True, bootstrap=[seed.dht_address])
    try:
        assert node.endpoint[0] == "0.0.0.0" and node.public_endpoint is None
        assert node.network_status()["reachable"] == "none"
        with pytest.raises(NoPublicEndpoint, match="set a public host"):
            await node.advertise_signer()
        assert node.advertisement is None
        assert await seed.find_available_signers() == []
        # a request it creates names no endpoint rather than 0.0.0.0; JOINs carry none either
        record = await node.announce_signing_request([node.pubkey, seed.pubkey], [bytes(32)])
        assert record.endpoint is None and node.transport.published_endpoint() is None
    finally:
        await asyncio.gather(seed.stop(), node.stop())


@pytest.mark.parametrize("bad", ["127.0.0.1", "10.0.0.7", "192.168.1.20", "172.20.0.1",
                                 "169.254.1.1", "fd12::1", "0.0.0.0", "localhost"])
async def test_a_private_public_host_is_refused_before_listening(bad):
    node = Musig2Node(os.urandom(32), chain=TESTNET, config=CFG)
    with pytest.raises(EndpointNotPublic):
        await node.start("0.0.0.0", dht=False, public_host=bad)
    assert node.transport.endpoint is None and not node.running


async def test_the_public_endpoint_is_what_strangers_find():
    seed = Musig2Node(os.urandom(32), chain=TESTNET, config=CFG, dht_config=DHT)
    node = Musig2Node(os.urandom(32), chain=TESTNET, config=CFG, dht_config=DHT)
    await seed.start("127.0.0.1", dht=True, public_host="203.0.113.10")
    await node.start("0.0.0.0", dht=True, bootstrap=[seed.dht_address],
                     public_host="signer.example.org", public_port=443)
    try:
        ad = await node.advertise_signer(nickname="n")
        assert (ad.endpoint.host, ad.endpoint.port) == ("signer.example.org", 443)
        [found] = await seed.find_available_signers()
        assert (found.endpoint.host, found.endpoint.port) == ("signer.example.org", 443)
        status = node.network_status()
        assert status == {"chain": "testnet", "listen": ["0.0.0.0", node.endpoint[1]],
                          "endpoint": ["signer.example.org", 443], "reachable": "direct",
                          "dht": list(node.dht_address)}
        record = await node.announce_signing_request([node.pubkey, seed.pubkey], [bytes(32)])
        assert decode_record(record.encode(), chain=TESTNET).endpoint.host == "signer.example.org"
    finally:
        await asyncio.gather(seed.stop(), node.stop())


async def test_regtest_listening_on_all_interfaces_publishes_loopback_and_is_reached():
    seed = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    await seed.start("127.0.0.1", dht=True)
    await node.start("0.0.0.0", dht=True, bootstrap=[seed.dht_address])
    try:
        ad = await node.advertise_signer()
        assert (ad.endpoint.host, ad.endpoint.port) == ("127.0.0.1", node.endpoint[1])
        [found] = await seed.find_available_signers()
        record = await seed.announce_signing_request([seed.pubkey, node.pubkey], [os.urandom(32)])
        ids = await asyncio.gather(seed.join_signing_request(record),
                                   node.join_signing_request(record))
        sigs = await asyncio.gather(seed.get_final_signature(ids[0][0], 20),
                                    node.get_final_signature(ids[1][0], 20))
        assert sigs[0] == sigs[1] and found.owner == node.pubkey
    finally:
        await asyncio.gather(seed.stop(), node.stop())


@pytest.mark.parametrize("chain, listed", [(TESTNET, False), (REGTEST, True)])
async def test_advertisements_naming_local_addresses_are_not_listed_on_real_chains(chain, listed):
    """A stranger's advertisement naming 192.168.1.1 or 127.0.0.1 would aim us at our own home
    network or machine: on a real chain it is dropped (counted); regtest keeps it."""
    from musig2_plugin.records import Advertisement
    seed = Musig2Node(os.urandom(32), chain=chain, config=CFG, dht_config=DHT)
    me = Musig2Node(os.urandom(32), chain=chain, config=CFG, dht_config=DHT)
    await seed.start(dht=True, public_host="203.0.113.20" if chain is TESTNET else None)
    await me.start(dht=True, bootstrap=[seed.dht_address])
    try:
        for host in ("192.168.1.1", "127.0.0.1", "10.0.0.2"):
            ad = Advertisement.create(os.urandom(32), chain=chain, tx_types="spend",
                                      min_amount_sat=0, max_amount_sat=10**8, host=host, port=80)
            await seed.dht.publish(ad)
        found = await me.find_available_signers()
        assert len(found) == (3 if listed else 0)
        assert me.stats["non_public_endpoint"] == (0 if listed else 3)
        assert len(me.endpoints) == (4 if listed else 1)        # ourselves (+ the listed ones)
    finally:
        await asyncio.gather(seed.stop(), me.stop())
