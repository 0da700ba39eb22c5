"""DialGuard and the hello check on their own: TTLs, refill, memory bound, malformed answers."""
from __future__ import annotations

import os

import pytest

from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.foundation.chain import REGTEST, TESTNET
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.transport.dialguard import DialGuard, EndpointIgnored
from musig2_plugin.transport.hello import HandshakeFailed, answer_hello, check_hello, new_nonce

CFG = Musig2Config().with_(endpoint_attempts_per_minute=6.0, endpoint_attempt_burst=2,
                           wrong_key_ignore_s=100.0, dead_endpoint_ignore_s=50.0,
                           max_dial_records=8)
E = ("203.0.113.1", 4000)
K1, K2 = plain_pubkey(os.urandom(32)), plain_pubkey(os.urandom(32))


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_wrong_key_is_ignored_for_that_key_only_until_its_ttl():
    clock = Clock()
    g = DialGuard(CFG, clock)
    g.handshake_failed(E, K1, "another key", speaks_protocol=True)
    with pytest.raises(EndpointIgnored, match="failed the handshake"):
        g.check(E, K1)
    g.check(E, K2)                                   # the node living there: still fine
    g.check(E, None)
    clock.t += 101
    g.check(E, K1)                                   # forgiven after the TTL


def test_dead_endpoint_is_ignored_for_every_key_and_spends_the_budget():
    clock = Clock()
    g = DialGuard(CFG, clock)
    g.handshake_failed(E, K1, "junk", speaks_protocol=False)
    for key in (K1, K2, None):
        with pytest.raises(EndpointIgnored):
            g.check(E, key)
    clock.t += 51
    g.check(E, K2)


def test_failed_connects_are_rate_limited_and_refill():
    clock = Clock()
    g = DialGuard(CFG, clock)
    for _ in range(2):
        g.check(E, K1)
        g.connect_failed(E)
    with pytest.raises(EndpointIgnored, match="too many failed attempts"):
        g.check(E, K2)
    g.check(E, K2, connecting=False)                 # an open connection needs no new attempt
    clock.t += 10                                    # 6/min: one token per 10 s
    g.check(E, K2)
    assert g.stats["rate_limited"] == 1 and g.stats["connect_failed"] == 2


def test_memory_is_bounded():
    g = DialGuard(CFG, Clock())
    for port in range(1, 100):
        g.handshake_failed(("203.0.113.2", port), K1, "x", speaks_protocol=port % 2 == 0)
        g.connect_failed(("203.0.113.3", port))
    assert g.ignored_count() <= 8 and len(g._buckets) <= 8


def test_hello_proves_key_and_chain():
    sk = os.urandom(32)
    nonce = new_nonce()
    answer = answer_hello(sk, REGTEST.id, nonce.hex())
    check_hello(answer, expect=plain_pubkey(sk), chain_id=REGTEST.id, nonce=nonce)
    with pytest.raises(HandshakeFailed, match="not the one expected") as e:
        check_hello(answer, expect=K1, chain_id=REGTEST.id, nonce=nonce)
    assert e.value.speaks_protocol
    with pytest.raises(HandshakeFailed, match="another chain"):
        check_hello(answer, expect=plain_pubkey(sk), chain_id=TESTNET.id, nonce=nonce)
    with pytest.raises(HandshakeFailed):             # replayed to another nonce
        check_hello(answer, expect=plain_pubkey(sk), chain_id=REGTEST.id, nonce=new_nonce())
    for junk in (None, [], "x", {"key": "zz" * 33, "sig": "00" * 64}, {"key": 1, "sig": 2},
                 {"key": "04" + "00" * 32, "sig": "00" * 64}):
        with pytest.raises(HandshakeFailed):
            check_hello(junk, expect=K1, chain_id=REGTEST.id, nonce=nonce)
    for bad in ("zz" * 32, "00" * 31, 7, None):
        with pytest.raises(ValueError):
            answer_hello(sk, REGTEST.id, bad)
