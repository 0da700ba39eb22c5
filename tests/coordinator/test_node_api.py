"""The coordinator API (Musig2Node) against real nodes: DHT path, refusals, bad input."""
from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest

from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import (CoordinatorError, Musig2Node, NotStarted, RequestPayload,
                                       RequestRefused, request_key)
from musig2_plugin.coordinator.payload import PayloadFormatError
from musig2_plugin.crypto import plain_pubkey, schnorr_verify
from musig2_plugin.dht import DhtConfig
from musig2_plugin.records import SigningRequest
from musig2_plugin.transport import PeerRefused

CFG = Musig2Config().with_(round_timeout=2.0, coordinator_grace=1.0, heartbeat_interval=0.5)
DHT = DhtConfig(rate_limit_by="address")


async def test_offline_participant_finds_the_request_in_the_dht_later():
    """Bob is unknown to Alice when she announces (no push possible); he finds it in the DHT."""
    alice, bob, carol = (Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST) for _ in range(3))
    await alice.start(dht=True)
    await carol.start(dht=True, bootstrap=[alice.dht_address])
    await carol.advertise_signer()
    try:
        ads = await alice.find_available_signers()
        assert [a.owner for a in ads] == [carol.pubkey]
        keys = [alice.pubkey, bob.pubkey, carol.pubkey]
        msg = os.urandom(32)
        record = await alice.announce_signing_request(keys, [msg], app_data=b"psbt")
        assert request_key(record) in carol.requests            # pushed (endpoint known)
        await bob.start(dht=True, bootstrap=[alice.dht_address])  # bob comes online later
        found = await bob.find_signing_requests_for_me()
        assert [request_key(r) for r in found] == [request_key(record)]
        assert bob.requests[request_key(record)].via == "dht"
        assert bob.requests[request_key(record)].payload.app_data == b"psbt"
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in (alice, bob, carol)))
        sigs = await asyncio.gather(*(x.get_final_signature(ids[0][0], 20)
                                      for x in (alice, bob, carol)))
        assert len(set(sigs)) == 1
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
    finally:
        await asyncio.gather(alice.stop(), bob.stop(), carol.stop())


async def test_requests_not_for_us_or_tampered_are_refused_and_change_nothing():
    alice, bob = Musig2Node(os.urandom(32), config=CFG, chain=REGTEST), Musig2Node(os.urandom(32), config=CFG, chain=REGTEST)
    await alice.start(dht=False)
    await bob.start(dht=False)
    alice.add_peer(bob.pubkey, bob.endpoint)
    try:
        outsider = plain_pubkey(os.urandom(32))
        other = plain_pubkey(os.urandom(32))
        # Addressed to others only: bob refuses the push.
        rec = SigningRequest.create(alice._seckey, keys=[alice.pubkey, outsider],
                                    messages=[bytes(32)], payload=b"\x01" * 64, chain=REGTEST)
        with pytest.raises(PeerRefused, match="not addressed"):
            await alice.transport.push_request(bob.endpoint, rec.encode())
        # Addressed to bob, but the payload is not encrypted to him (garbage): refused.
        rec = SigningRequest.create(alice._seckey, keys=[alice.pubkey, bob.pubkey, other],
                                    messages=[bytes(32)], payload=b"\x01" * 200, chain=REGTEST)
        with pytest.raises(PeerRefused, match="unreadable"):
            await alice.transport.push_request(bob.endpoint, rec.encode())
        # A valid request with one byte of its signature flipped.
        good = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [bytes(32)])
        data = bytearray(good.encode())
        data[-1] ^= 1
        with pytest.raises(PeerRefused, match="InvalidSignature"):
            await alice.transport.push_request(bob.endpoint, bytes(data))
        with pytest.raises(PeerRefused):
            await alice.transport.push_request(bob.endpoint, b"\x00" * 10)
        assert list(bob.requests) == [request_key(good)]         # only the genuine one
        with pytest.raises(RequestRefused):
            await bob.join_signing_request(os.urandom(32))
        with pytest.raises(CoordinatorError):
            await bob.start_round1(os.urandom(32), 1)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def test_api_requires_start_and_dht_for_discovery():
    node = Musig2Node(os.urandom(32), config=CFG, chain=REGTEST)
    with pytest.raises(NotStarted):
        await node.advertise_signer()
    with pytest.raises(NotStarted):
        await node.announce_signing_request([node.pubkey], [bytes(32)])
    await node.start(dht=False)
    try:
        with pytest.raises(NotStarted):
            await node.find_available_signers()
        ad = await node.advertise_signer(nickname="solo")       # no DHT: local event only
        assert ad.endpoint.port == node.endpoint[1]
        withdrawal = await node.withdraw_advertisement()
        assert withdrawal.seq > ad.seq and node.advertisement is None
        with pytest.raises(CoordinatorError):
            await node.announce_signing_request([node.pubkey, plain_pubkey(os.urandom(32))],
                                                [bytes(32)], app_data=bytes(10**6))
    finally:
        await node.stop()


def test_request_payload_codec_is_strict():
    p = RequestPayload(merkle_root=bytes(range(32)), endpoints={b"\x02" + bytes(32): ("127.0.0.1", 9)},
                       app_data=b"psbt")
    data = p.encode()
    assert RequestPayload.decode(data, max_app=100) == p
    for bad in (data[:-1], data + b"x", b"\x02" + data[1:], data[:1] + b"\x07" + data[2:]):
        with pytest.raises(PayloadFormatError):
            RequestPayload.decode(bad, max_app=100)
    with pytest.raises(PayloadFormatError):
        RequestPayload.decode(data, max_app=3)
    assert RequestPayload.decode(dataclasses.replace(p, tweak="none", merkle_root=None).encode(),
                                 max_app=100).tweak == "none"


async def test_background_listeners_for_requests_and_signers():
    alice, bob = (Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST) for _ in range(2))
    await alice.start(dht=True)
    await bob.start(dht=True, bootstrap=[alice.dht_address])
    try:
        got_request = asyncio.get_running_loop().create_future()
        bob.on("signing-request:received",
               lambda **kw: got_request.done() or got_request.set_result(kw))
        seen_signer = asyncio.get_running_loop().create_future()
        alice.watch_signers("spend", interval=0.2,
                            callback=lambda ad: seen_signer.done() or seen_signer.set_result(ad))
        bob.watch_signing_requests(interval=0.2)
        await bob.advertise_signer(nickname="bob")
        ad = await asyncio.wait_for(seen_signer, 10)
        assert ad.owner == bob.pubkey and alice.endpoints[bob.pubkey] == bob.endpoint
        # Push disabled: bob's listener must find it in the DHT by itself.
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [bytes(32)],
                                                      push=False)
        kw = await asyncio.wait_for(got_request, 10)
        assert kw["via"] == "dht" and kw["request_id"] == request_key(record)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def test_bad_user_input_is_a_typed_error_and_changes_nothing():
    from musig2_plugin.crypto import CryptoError
    from musig2_plugin.session import SpecError

    node = Musig2Node(os.urandom(32), config=CFG, chain=REGTEST)
    await node.start(dht=False)
    try:
        other = plain_pubkey(os.urandom(32))
        with pytest.raises(SpecError):
            await node.announce_signing_request([node.pubkey, other], [bytes(31)])
        with pytest.raises(SpecError):
            await node.announce_signing_request([node.pubkey, node.pubkey], [bytes(32)])
        with pytest.raises(SpecError):
            await node.announce_signing_request([node.pubkey, other], [bytes(32)], tweak="weird")
        with pytest.raises((CryptoError, ValueError)):
            await node.announce_signing_request([node.pubkey, b"\x02" + b"\xff" * 32], [bytes(32)])
        with pytest.raises(SpecError):
            await node.announce_signing_request([node.pubkey] + [plain_pubkey(os.urandom(32))
                                                                 for _ in range(60)], [bytes(32)])
        assert node.requests == {} and node.sessions.sessions == {}
    finally:
        await node.stop()


async def test_endpoint_hints_name_the_first_coordinators_of_each_session():
    nodes = [Musig2Node(os.urandom(32), config=CFG, chain=REGTEST) for _ in range(8)]
    for x in nodes:
        await x.start(dht=False)
    try:
        for x in nodes[1:]:
            nodes[0].add_peer(x.pubkey, x.endpoint)
        keys = [x.pubkey for x in nodes]
        record = await nodes[0].announce_signing_request(keys, [os.urandom(32), os.urandom(32)])
        known = nodes[0].requests[request_key(record)]
        wanted = set()
        for spec in known.specs:
            wanted |= set(spec.order[:CFG.max_failovers + 1])
        assert set(known.payload.endpoints) == wanted
        assert all(known.payload.endpoints[k] == x.endpoint for x in nodes for k in [x.pubkey]
                   if k in wanted)
    finally:
        await asyncio.gather(*(x.stop() for x in nodes))


async def test_what_discovery_remembers_is_bounded():
    """Advertisements cost their owners nothing: the keys a node remembers from discovery
    (announced-once set and address book) stay within max_known_endpoints."""
    cfg = CFG.with_(max_known_endpoints=2)
    alice = Musig2Node(os.urandom(32), config=cfg, dht_config=DHT, chain=REGTEST)
    await alice.start(dht=True)
    signers = [Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST) for _ in range(4)]
    try:
        for s in signers:
            await s.start(dht=True, bootstrap=[alice.dht_address])
            await s.advertise_signer(nickname="s")
        found = await alice.find_available_signers("spend")
        assert {ad.owner for ad in found} == {s.pubkey for s in signers}
        assert len(alice._discovered) <= 2 and len(alice.endpoints) <= 2
    finally:
        await asyncio.gather(*(x.stop() for x in signers + [alice]), return_exceptions=True)
