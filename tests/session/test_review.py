"""Security-review regressions of the session layer, on real nodes over 127.0.0.1.

Each test names the attack it defends against; see docs/security-review.md.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import schnorr_verify
from musig2_plugin.transport import MsgType, PeerRefused
from musig2_plugin.session.messages import encode_body

from session_cluster import FAST, WireLog, by_key, make_cluster, stop_all, until


async def test_sessions_created_by_strangers_cannot_block_a_session_we_join():
    """Anyone can push a request naming us and a key of their own, then JOIN it: each such
    JOIN makes a placeholder session here. Filling the table with them must not stop our
    user from joining (and completing) a request they approved."""
    cfg = FAST.with_(max_sessions=3)
    alice, bob = await make_cluster(2, config=cfg)
    mallory = Musig2Node(os.urandom(32), config=FAST)     # her own table is not the point
    await mallory.start(dht=False)
    mallory.add_peer(bob.pubkey, bob.endpoint)
    bob.add_peer(mallory.pubkey, mallory.endpoint)
    try:
        for _ in range(cfg.max_sessions + 2):
            junk = await mallory.announce_signing_request([bob.pubkey, mallory.pubkey],
                                                          [os.urandom(32)])
            await mallory.join_signing_request(junk, auto=False)
        await until(lambda: len([s for s in bob.sessions.sessions.values()
                                 if not s.closed]) >= cfg.max_sessions, 10)
        assert all(not s.joined_local for s in bob.sessions.sessions.values())
        msg = os.urandom(32)
        record = await alice.announce_signing_request([alice.pubkey, bob.pubkey], [msg])
        (sid,) = await bob.join_signing_request(record)
        await alice.join_signing_request(record)
        sig = await bob.get_final_signature(sid, 15)
        assert schnorr_verify(Musig2Node.aggregate_key([alice.pubkey, bob.pubkey]).xonly(),
                              msg, sig)
        assert len([s for s in bob.sessions.sessions.values() if not s.closed]) \
            <= cfg.max_sessions
    finally:
        await mallory.stop()
        await stop_all([alice, bob])


async def test_a_requests_endpoint_hints_cannot_redirect_other_sessions():
    """Mallory's request names Carol with Mallory's own address as Carol's endpoint hint.
    Bob must not adopt it for Carol in general: a later honest session between Bob and
    Carol (Bob knows Carol only through that request's hints) reaches the real Carol."""
    alice, bob, carol = await make_cluster(3)
    mallory = Musig2Node(os.urandom(32), config=FAST)
    await mallory.start(dht=False)
    # Bob knows nobody's endpoint but Alice's and Mallory's.
    bob.endpoints.clear()
    bob.add_peer(alice.pubkey, alice.endpoint)
    bob.add_peer(mallory.pubkey, mallory.endpoint)
    mallory.add_peer(bob.pubkey, bob.endpoint)
    mallory.add_peer(carol.pubkey, mallory.endpoint)          # the lie
    try:
        bait = await mallory.announce_signing_request(
            [bob.pubkey, carol.pubkey, mallory.pubkey], [os.urandom(32)])
        bait_spec = bob.requests[request_key(bait)].specs[0]
        assert bait_spec.endpoints[carol.pubkey] == mallory.endpoint   # the hint arrived
        assert bob.endpoints.get(carol.pubkey) is None                 # ... and stayed there
        msg = os.urandom(32)
        record = await alice.announce_signing_request([bob.pubkey, carol.pubkey], [msg])
        spec = bob.requests[request_key(record)].specs[0]
        assert spec.endpoints[carol.pubkey] == carol.endpoint
        (sid,) = await bob.join_signing_request(record)
        await carol.join_signing_request(record)
        sig = await bob.get_final_signature(sid, 15)
        assert schnorr_verify(spec.aggregate_xonly, msg, sig)
        assert bob.endpoints[carol.pubkey] == carol.endpoint
    finally:
        await mallory.stop()
        await stop_all([alice, bob, carol])


async def test_the_address_book_is_bounded():
    """Every pushed request teaches us its creator's endpoint, and keys are free: the book
    keeps at most max_known_endpoints entries (the newest)."""
    cfg = FAST.with_(max_known_endpoints=3)
    (bob,) = await make_cluster(1, config=cfg)
    creators = []
    try:
        for _ in range(6):
            c = Musig2Node(os.urandom(32), config=FAST)
            await c.start(dht=False)
            c.add_peer(bob.pubkey, bob.endpoint)
            creators.append(c)
            await c.announce_signing_request([bob.pubkey, c.pubkey], [os.urandom(32)])
        assert len(bob.requests) == 6
        assert len(bob.endpoints) == 3
        assert list(bob.endpoints) == [c.pubkey for c in creators[-3:]]
    finally:
        await stop_all(creators + [bob])
