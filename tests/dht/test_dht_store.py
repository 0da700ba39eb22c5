"""RecordStore and RateLimiter on their own: slots, seq order, tombstones, bounds, pruning."""
from __future__ import annotations

import time

import pytest

from dht_netutil import make_ad, seckey
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST, TESTNET
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.dht import DUPLICATE, STORED, RecordStore
from musig2_plugin.dht.ratelimit import RateLimiter
from musig2_plugin.records import SigningRequest, Withdrawal, topic_for_requests, topic_for_type

SPEND = topic_for_type("spend", REGTEST, 0)
SWAP = topic_for_type("swap", REGTEST, 0)


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def test_one_slot_per_owner_highest_seq_wins():
    store = RecordStore(chain=REGTEST)
    ads = [make_ad(i, seq=10) for i in range(5)]
    assert [store.put(SPEND, a) for a in ads] == [STORED] * 5
    assert store.put(SPEND, ads[0]) == DUPLICATE
    newer = make_ad(0, seq=11, nickname="renamed")
    assert store.put(SPEND, newer) == STORED
    assert store.put(SPEND, make_ad(0, seq=9)) == "refused:stale"
    got = store.get(SPEND)
    assert len(got) == 5 and len(store) == 5
    assert [r for r in got if r.owner == ads[0].owner][0].nickname == "renamed"
    assert store.stats["refused:stale"] == 1 and store.stats[DUPLICATE] == 1


def test_withdrawal_tombstone_blocks_the_old_ad_until_it_expires():
    clock = Clock()
    store = RecordStore(clock=clock, chain=REGTEST)
    ad = make_ad(1, seq=100, ttl=60)
    w = Withdrawal.create(seckey(1), seq=101, ttl=120, chain=REGTEST)
    assert store.put(SPEND, ad) == STORED
    assert store.put(SPEND, w) == STORED
    assert store.get(SPEND) == [w]
    assert store.put(SPEND, ad) == "refused:stale"          # the old ad cannot come back
    assert store.put_bytes(SWAP, w.encode()) == STORED       # tombstones go to every signer topic
    # an ad may sit under any signer topic (updates that drop a type go there), never elsewhere
    assert store.put_bytes(topic_for_requests(ad.owner, chain=REGTEST), ad.encode()) == "refused:wrong_topic"
    clock.t += 121
    assert store.get(SPEND) == [] and store.prune() == 2 and len(store) == 0


def test_records_must_belong_to_the_topic():
    store = RecordStore(chain=REGTEST)
    req = SigningRequest.create(seckey(1), keys=[plain_pubkey(seckey(1)), plain_pubkey(seckey(2))],
                                messages=[bytes(32)], chain=REGTEST)
    assert store.put(SPEND, req) == "refused:wrong_topic"
    assert store.put(topic_for_requests(plain_pubkey(seckey(1)), chain=REGTEST), req) == "refused:wrong_topic"
    assert store.put(topic_for_requests(plain_pubkey(seckey(2)), chain=REGTEST), req) == STORED
    assert store.put_bytes(b"short", req.encode()) == "refused:bad_topic"


def test_bounds_per_topic_topics_and_total():
    store = RecordStore(max_per_topic=3, max_topics=2, max_total=4, chain=REGTEST)
    assert [store.put(SPEND, make_ad(i)) for i in range(4)] == [STORED] * 3 + ["refused:topic_full"]
    # an owner already present may still update its slot when the topic is full
    assert store.put(SPEND, make_ad(0, seq=2**62)) == STORED
    assert store.put(SWAP, make_ad(10, tx_types=("swap",))) == STORED
    assert store.put(SWAP, make_ad(11, tx_types=("swap",))) == "refused:store_full"  # total 4
    third = topic_for_type("custody", REGTEST, 0)
    store.max_total = 100
    assert store.put(third, make_ad(12, tx_types=("custody",))) == "refused:store_full"  # topics 2
    assert store.stats["refused:topic_full"] == 1 and store.stats["refused:store_full"] == 2


def test_expired_records_refused_and_pruned_to_make_room():
    clock = Clock()
    store = RecordStore(max_per_topic=2, clock=clock, chain=REGTEST)
    assert store.put(SPEND, make_ad(0, ttl=1)) == STORED
    assert store.put(SPEND, make_ad(1, ttl=1)) == STORED
    clock.t += 2
    assert store.put_bytes(SPEND, make_ad(2, ttl=1).encode()) == "refused:ExpiredRecord"
    fresh = make_ad(3, ttl=60)
    clock.t = time.time()
    clock.t += 2
    assert store.put(SPEND, fresh) == STORED  # the two expired ones were pruned for it
    assert store.get(SPEND) == [fresh] and len(store) == 1


def test_put_bytes_counts_each_refusal_class():
    store = RecordStore(chain=REGTEST)
    good = make_ad(1).encode()
    assert store.put_bytes(SPEND, good[:-1] + bytes([good[-1] ^ 1])) == "refused:InvalidSignature"
    assert store.put_bytes(SPEND, bytes([C.RECORD_VERSION, 1]) + b"garbage") == \
        "refused:MalformedRecord"
    assert store.put_bytes(SPEND, b"\x01\x01garbage") == "refused:UnsupportedVersion"
    # a chain id no known network has: refused before the signature is even checked
    alien = bytearray(good)
    alien[2:2 + C.CHAIN_ID_LEN] = b"\xff" * C.CHAIN_ID_LEN
    assert store.put_bytes(SPEND, bytes(alien)) == "refused:WrongChain"
    # another known chain's record: held, but only under its own chain's topics
    testnet_ad = make_ad(1, chain=TESTNET)
    assert store.put_bytes(SPEND, testnet_ad.encode()) == "refused:wrong_topic"
    assert store.put_bytes(topic_for_type("spend", TESTNET, 0), testnet_ad.encode()) == "stored"
    assert store.stats["held_other_chain"] == 1
    assert store.get(topic_for_type("spend", TESTNET, 0)) == [testnet_ad]
    assert store.get(SPEND) == []
    assert store.put_bytes(SPEND, b"\x07" * 200) == "refused:UnsupportedVersion"
    assert store.put_bytes(SPEND, good + bytes(8000)) == "refused:OversizedRecord"
    assert len(store) == 1                                   # the testnet advertisement
    assert {k for k in store.stats if k.startswith("refused:")} == {
        "refused:InvalidSignature", "refused:MalformedRecord", "refused:UnsupportedVersion",
        "refused:OversizedRecord", "refused:WrongChain", "refused:wrong_topic"}
    assert store.stats["refused:WrongChain"] == 1


def test_rate_limiter_refills_and_bounds_memory():
    now = [0.0]
    lim = RateLimiter(rate=3, per=60.0, max_sources=2, clock=lambda: now[0])
    assert [lim.allow("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    now[0] += 20  # one token back
    assert lim.allow("1.2.3.4") and not lim.allow("1.2.3.4")
    assert lim.allow("5.6.7.8") and lim.allow("9.9.9.9")
    assert len(lim) == 2  # the oldest source was forgotten


@pytest.mark.parametrize("mode, expected", [("host", "127.0.0.1"), ("address", ("127.0.0.1", 7))])
def test_rate_limit_key_modes(mode, expected):
    from musig2_plugin.dht import DhtConfig, DhtNode
    node = DhtNode(DhtConfig(rate_limit_by=mode), chain=REGTEST)
    from musig2_plugin.dht.protocol import RecordProtocol, RefusingStorage
    from kademlia.node import Node
    proto = RecordProtocol(Node(bytes(20)), RefusingStorage(node._counters), 20,
                           records=node.records, config=node.config)
    assert proto.source_key(("127.0.0.1", 7)) == expected
    with pytest.raises(ValueError):
        DhtConfig(rate_limit_by="port")


def test_byte_budget_and_lapsed_versions():
    clock = Clock()
    one = len(make_ad(0).encode())
    store = RecordStore(max_bytes=3 * one + 10, clock=clock, chain=REGTEST)
    assert [store.put(SPEND, make_ad(i)) for i in range(4)] == [STORED] * 3 + ["refused:store_full"]
    assert store.bytes_held == sum(len(r.encode()) for r in store.get(SPEND))
    # a longer description for an existing slot would exceed the byte budget
    assert store.put(SPEND, make_ad(0, seq=2**62, nickname="x" * 32)) == "refused:store_full"
    assert store.put(SPEND, make_ad(0, seq=2**62, nickname="signer9")) == STORED  # same size: fine
    # an expired version no longer blocks an older-seq record that is still live
    store2 = RecordStore(clock=clock, chain=REGTEST)
    w = Withdrawal.create(seckey(5), seq=10**15, ttl=1, now=clock.t, chain=REGTEST)
    assert store2.put(SPEND, w) == STORED
    live_old = make_ad(5, seq=1, ttl=600)
    assert store2.put(SPEND, live_old) == "refused:stale"
    clock.t += 2
    assert store2.put(SPEND, live_old) == STORED and store2.get(SPEND) == [live_old]
    assert len(store2) == 1 and store2.bytes_held == len(live_old.encode())


def test_discovery_callbacks_unregister():
    from musig2_plugin.dht import Discovery
    d = Discovery(node=None)  # type: ignore[arg-type]  (no lookups in this test)
    got = []
    off = d.on("signer:advertised", lambda **kw: got.append(kw))
    d.emit("signer:advertised", advertisement=1)
    off()
    off()
    d.emit("signer:advertised", advertisement=2)
    assert got == [{"advertisement": 1}]
