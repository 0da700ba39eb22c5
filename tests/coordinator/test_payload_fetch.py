"""Payloads too large for a DHT record: committed in the record, fetched from the creator.

Real DHT nodes and real aiorpcx sessions on 127.0.0.1. Two tests make the creator misbehave
by replacing what its real node serves (the stored bytes, or the transport's FETCH handler):
no honest node can produce those answers, and the co-signer under test is fully real.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator import (Musig2Node, OversizedPayloadReply, PayloadFetchError,
                                       PayloadMismatch, RequestRefused, request_key)
from musig2_plugin.coordinator.fetch import FETCH_BODY, fetch_payload
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.dht import DhtConfig
from musig2_plugin.records import decode_record
from musig2_plugin.transport import Envelope, MsgType

CFG = Musig2Config().with_(round_timeout=2.0, coordinator_grace=1.0, heartbeat_interval=0.5)
#: Small frames force the co-signer to fetch in several chunks.
SMALL_FRAMES = CFG.with_(max_message_bytes=16 * 1024, max_payload_bytes=12 * 1024)
DHT = DhtConfig(rate_limit_by="address")
BIG_APP = 10_000          # plaintext bytes: the encrypted payload exceeds the 4096-byte DHT cap


def _received(node: Musig2Node) -> list:
    seen = []
    node.on("signing-request:received", lambda **kw: seen.append(kw), loop=None)
    return seen


async def test_large_request_is_found_in_the_dht_fetched_from_the_creator_and_signed():
    alice = Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST)
    carol = Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST)
    bob = Musig2Node(os.urandom(32), config=SMALL_FRAMES, dht_config=DHT, chain=REGTEST)
    await alice.start(dht=True)
    await carol.start(dht=True, bootstrap=[alice.dht_address])
    alice.add_peer(carol.pubkey, carol.endpoint)
    try:
        keys = [alice.pubkey, bob.pubkey, carol.pubkey]
        msgs = [os.urandom(32), os.urandom(32)]
        app = os.urandom(BIG_APP)
        record = await alice.announce_signing_request(keys, msgs, app_data=app)
        assert record.payload == b"" and record.payload_ref is not None
        assert record.payload_ref.length > C.MAX_REQUEST_PAYLOAD_BYTES
        assert len(record.encode()) <= C.MAX_RECORD_BYTES
        assert decode_record(record.encode(), chain=REGTEST) == record       # commitment is signed, canonical
        key = request_key(record)
        # Carol got the push (a small record) and fetched the payload from alice.
        assert carol.requests[key].via == "push"
        assert carol.requests[key].payload.app_data == app
        # Bob was offline (not pushed); he finds the record in the DHT and fetches the payload.
        await bob.start(dht=True, bootstrap=[alice.dht_address])
        seen = _received(bob)
        found = await bob.find_signing_requests_for_me()
        assert [request_key(r) for r in found] == [key]
        assert bob.requests[key].via == "dht" and bob.requests[key].payload.app_data == app
        await asyncio.sleep(0)
        assert len(seen) == 1 and seen[0]["via"] == "dht"
        # Several chunks were needed with bob's small frames: count the FETCHes he signed.
        sent = []
        bob.transport.sent_observers.append(lambda env: sent.append(env.msg_type))
        blob = await fetch_payload(bob.transport, alice.endpoint, key, record.payload_ref)
        assert record.payload_ref.matches(blob)
        assert sent.count(MsgType.FETCH) == -(-len(blob) // ((16 * 1024 - 1024) // 2)) >= 2
        ids = await asyncio.gather(*(x.join_signing_request(record) for x in (alice, bob, carol)))
        agg = Musig2Node.aggregate_key(keys).xonly()
        for i, msg in enumerate(msgs):
            sigs = await asyncio.gather(*(x.get_final_signature(ids[0][i], 20)
                                          for x in (alice, bob, carol)))
            assert len(set(sigs)) == 1 and schnorr_verify(agg, msg, sigs[0])
    finally:
        await asyncio.gather(alice.stop(), bob.stop(), carol.stop())


async def test_payload_not_matching_the_commitment_is_refused_and_changes_nothing():
    alice = Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST)
    bob = Musig2Node(os.urandom(32), config=CFG, dht_config=DHT, chain=REGTEST)
    await alice.start(dht=True)
    await bob.start(dht=True, bootstrap=[alice.dht_address])
    try:
        keys = [alice.pubkey, bob.pubkey]
        record = await alice.announce_signing_request(keys, [os.urandom(32)],
                                                      app_data=os.urandom(BIG_APP), push=False)
        key = request_key(record)
        good = alice.payloads.get(key)
        seen = _received(bob)
        for bad in (bytes([good[0] ^ 1]) + good[1:],     # same length, other bytes
                    good[:100] + os.urandom(len(good)),  # longer and different
                    good[:-1]):                          # shorter: the creator runs out
            alice.payloads.put(key, keys, bad)
            assert await bob.find_signing_requests_for_me() == []
            with pytest.raises(PayloadFetchError) as info:
                await bob.join_signing_request(record)
            if len(bad) >= len(good):
                assert type(info.value) is PayloadMismatch
            assert bob.requests == {} and bob.sessions.specs == {}
        await asyncio.sleep(0)
        assert seen == []
        # A co-signer handed the wrong bytes directly (not fetched) refuses them the same way.
        with pytest.raises(PayloadMismatch):
            bob._receive(record, "api", good[:-1] + bytes([good[-1] ^ 1]))
        # Honest again: the same record now works.
        alice.payloads.put(key, keys, good)
        assert [request_key(r) for r in await bob.find_signing_requests_for_me()] == [key]
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def test_only_participants_get_the_payload_and_bad_fetches_are_refused():
    alice, bob, eve = (Musig2Node(os.urandom(32), config=CFG, chain=REGTEST) for _ in range(3))
    for n in (alice, bob, eve):
        await n.start(dht=False)
    try:
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [os.urandom(32)],
                                                      app_data=os.urandom(BIG_APP), push=False)
        key, ref = request_key(record), record.payload_ref
        with pytest.raises(PayloadFetchError, match="NotAParticipant"):
            await fetch_payload(eve.transport, alice.endpoint, key, ref)
        assert alice.transport.refusals.get("NotAParticipant") == 1
        with pytest.raises(PayloadFetchError, match="UnknownPayload"):
            await fetch_payload(bob.transport, alice.endpoint, os.urandom(32), ref)
        # Eve cannot pass as bob: a FETCH naming bob but signed by eve fails its signature.
        forged = Envelope.sign(eve._seckey, msg_type=MsgType.FETCH, session_id=key,
                               sender=bob.pubkey, counter=1, body=FETCH_BODY.pack(0, 100), chain=REGTEST)
        with pytest.raises(Exception, match="BadSignature"):
            await eve.transport.fetch_chunk(alice.endpoint, forged)
        # Bob asking for a chunk beyond the payload or too large a chunk: typed refusal.
        for offset, size in ((ref.length, 10), (0, C.PAYLOAD_CHUNK_BYTES + 1), (0, 0)):
            env = bob.transport.seal(MsgType.FETCH, key, FETCH_BODY.pack(offset, size))
            with pytest.raises(Exception, match="BadFetch"):
                await bob.transport.fetch_chunk(alice.endpoint, env)
        # A FETCH is not a session message, and a session message does not fetch.
        env = bob.transport.seal(MsgType.FETCH, key, FETCH_BODY.pack(0, 10))
        with pytest.raises(Exception, match="only on the payload RPC"):
            await bob.transport.send(alice.endpoint, env)
        # Bob, a participant, gets it.
        blob = await fetch_payload(bob.transport, alice.endpoint, key, ref)
        assert ref.matches(blob)
        assert await bob.join_signing_request(record)
    finally:
        await asyncio.gather(alice.stop(), bob.stop(), eve.stop())


async def test_an_oversized_reply_is_refused():
    """Alice's node is real, but its FETCH handler is replaced by one answering more than asked."""
    alice, bob = Musig2Node(os.urandom(32), config=CFG, chain=REGTEST), Musig2Node(os.urandom(32), config=CFG, chain=REGTEST)
    await alice.start(dht=False)
    await bob.start(dht=False)
    alice.add_peer(bob.pubkey, bob.endpoint)
    try:
        honest = alice.transport._on_fetch
        alice.transport._on_fetch = lambda env: honest(env) + b"\x00" * 64
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey],
                                                      [os.urandom(32)],
                                                      app_data=os.urandom(BIG_APP), push=False)
        with pytest.raises(OversizedPayloadReply):
            await fetch_payload(bob.transport, alice.endpoint, request_key(record),
                                record.payload_ref)
        with pytest.raises(OversizedPayloadReply):
            await bob.join_signing_request(record)
        assert bob.requests == {}
        # The push path refuses it too (the push answer carries the refusal).
        with pytest.raises(Exception, match="answered"):
            await alice.transport.push_request(bob.endpoint, record.encode())
        assert bob.requests == {}
        # A creator that never answers: the fetch gives up after its timeout.
        alice.transport._on_fetch = honest

        async def silent(*_a):
            await asyncio.sleep(3600)
        bob.transport.fetch_chunk = silent
        with pytest.raises(PayloadFetchError, match="longer than"):
            await fetch_payload(bob.transport, alice.endpoint, request_key(record),
                                record.payload_ref, timeout=0.3)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def test_small_requests_keep_the_inline_payload_and_the_old_layout():
    alice, bob = Musig2Node(os.urandom(32), config=CFG, chain=REGTEST), Musig2Node(os.urandom(32), config=CFG, chain=REGTEST)
    await alice.start(dht=False)
    await bob.start(dht=False)
    alice.add_peer(bob.pubkey, bob.endpoint)
    try:
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey],
                                                      [os.urandom(32)], app_data=b"small psbt")
        assert record.payload_ref is None and 0 < len(record.payload) <= 4096
        data = record.encode()
        host = record.endpoint.host.encode()
        # ... | flags u8 = 1 (endpoint only) | host len | host | port u16 | signature 64
        assert data[-64 - 2 - len(host) - 1 - 1] == 1
        assert alice.payloads.get(request_key(record)) is None     # nothing served
        assert bob.requests[request_key(record)].payload.app_data == b"small psbt"
        with pytest.raises(RequestRefused):
            bob.known_request(os.urandom(32))
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
