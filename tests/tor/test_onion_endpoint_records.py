"""An onion endpoint travels through the signed records like any other: a mainnet node behind
an onion service advertises ``xxx.onion:7327``, its signing requests name it, and both decode
unchanged; a public endpoint the chain forbids is refused and changes nothing."""
from __future__ import annotations

import base64
import os

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.foundation.chain import MAINNET
from musig2_plugin.records.decode import decode_record
from musig2_plugin.transport.addresses import EndpointNotPublic

ONION = base64.b32encode(os.urandom(35)).decode().lower()[:56] + ".onion"


async def test_a_mainnet_node_advertises_and_requests_with_its_onion() -> None:
    node = Musig2Node(os.urandom(32), chain=MAINNET)
    await node.start("127.0.0.1", 0, dht=False)
    try:
        assert node.public_endpoint is None            # loopback is never published on mainnet
        node.set_public_endpoint((ONION, 7327))
        assert node.network_status()["reachable"] == "onion"
        assert node.network_status()["endpoint"] == [ONION, 7327]
        ad = await node.advertise_signer()
        assert (ad.endpoint.host, ad.endpoint.port) == (ONION, 7327)
        again = decode_record(ad.encode(), chain=MAINNET)
        assert (again.endpoint.host, again.endpoint.port) == (ONION, 7327)
        other = Musig2Node(os.urandom(32), chain=MAINNET).pubkey
        record = await node.announce_signing_request([node.pubkey, other], [os.urandom(32)], push=False)
        assert (record.endpoint.host, record.endpoint.port) == (ONION, 7327)
        assert decode_record(record.encode(), chain=MAINNET).endpoint == record.endpoint
    finally:
        await node.stop()


async def test_an_endpoint_the_chain_forbids_is_refused_and_nothing_changes() -> None:
    node = Musig2Node(os.urandom(32), chain=MAINNET)
    await node.start("127.0.0.1", 0, dht=False)
    try:
        for bad in ("127.0.0.1", "10.0.0.5", "0.0.0.0", "localhost"):
            with pytest.raises(EndpointNotPublic):
                node.set_public_endpoint((bad, 7327))
        assert node.public_endpoint is None and node.network_status()["reachable"] == "none"
    finally:
        await node.stop()
