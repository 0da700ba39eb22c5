"""Signed records: canonical codec, signatures, bounds and typed refusals (real libsecp256k1)."""
from __future__ import annotations

import dataclasses
import os
import time

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import plain_pubkey, schnorr_sign, tagged_hash, xonly_pubkey
from musig2_plugin.records import (Advertisement, ExpiredRecord, FutureRecord, InvalidField,
                                   InvalidSignature, MalformedRecord, OversizedRecord,
                                   RecordError, SigningRequest, TxType, UnknownRecordKind,
                                   UnsupportedVersion, Withdrawal, decode_record, supersedes,
                                   shard_of, signer_topic, topic_for_requests, topic_for_type,
                                   type_topics)


def key(i: int) -> bytes:
    return (i + 1).to_bytes(32, "big")


def ad(seckey=None, **kw):
    args = dict(tx_types=["spend", "swap"], min_amount_sat=10_000, max_amount_sat=5_000_000,
                host="127.0.0.1", port=50001, nickname="bob", description="fast\nfriendly",
                fee_per_signature_sat=250, response_time_s=30, reputation=80,
                trust_requirements=["min-rep=50", "kyc:none"], ttl=600)
    args.update(kw)
    return Advertisement.create(seckey or key(1), **args, chain=REGTEST)


def resign(record, seckey, **changes):
    """Change fields and sign validly with ``seckey`` (builds what an attacker could)."""
    rec = dataclasses.replace(record, signature=b"", _encoded=b"", **changes)
    return dataclasses.replace(rec, signature=schnorr_sign(seckey, rec.sighash()))


def test_advertisement_roundtrip_and_fields():
    a = ad()
    data = a.encode()
    b = decode_record(data, chain=REGTEST)
    assert isinstance(b, Advertisement) and b == a and b.encode() == data
    assert b.owner == plain_pubkey(key(1)) and b.owner_xonly == xonly_pubkey(key(1))
    assert b.tx_types == (TxType.SPEND, TxType.SWAP)
    assert b.trust_requirements == ("kyc:none", "min-rep=50")  # canonical: sorted
    assert b.endpoint.host == "127.0.0.1" and b.endpoint.port == 50001
    assert b.expires_at - b.created_at == pytest.approx(600)
    assert set(b.topics()) == {signer_topic("spend", b.owner, REGTEST), signer_topic(TxType.SWAP, b.owner, REGTEST)}
    assert b.covers_amount(10_000) and b.covers_amount(5_000_000) and not b.covers_amount(9_999)


def test_encoding_is_deterministic_and_signed_per_kind():
    now = time.time()
    a1 = ad(seq=7, now=now)
    a2 = ad(seq=7, now=now)
    assert a1.unsigned_bytes() == a2.unsigned_bytes()
    assert a1.sighash() == a2.sighash()
    # the same bytes hashed under another record kind's tag give another digest
    w = Withdrawal.create(key(1), seq=8, now=now, chain=REGTEST)
    assert w.sighash() == tagged_hash(C.RECORD_TAG_WITHDRAWAL, w.unsigned_bytes())
    assert w.sighash() != tagged_hash(C.RECORD_TAG_ADVERTISEMENT, w.unsigned_bytes())


def test_withdrawal_and_request_roundtrip():
    a = ad()
    w = Withdrawal.for_advertisement(key(1), a)
    assert w.seq > a.seq and w.expires_at > a.expires_at and w.slot == a.slot
    assert decode_record(w.encode(), chain=REGTEST) == w
    assert set(w.topics()) == {topic_for_type(t, REGTEST, shard_of(w.owner)) for t in TxType}
    keys = [plain_pubkey(key(i)) for i in range(3)]
    r = SigningRequest.create(key(0), keys=keys, messages=[os.urandom(32), os.urandom(32)],
                              payload=os.urandom(900), metadata="rent", host="127.0.0.1",
                              port=4000, tx_type="custody", chain=REGTEST)
    r2 = decode_record(r.encode(), chain=REGTEST)
    assert r2 == r and r2.tx_type is TxType.CUSTODY and r2.endpoint.port == 4000
    assert r2.addressed_keys() == tuple(keys[1:])
    assert set(r2.topics()) == {topic_for_requests(k, chain=REGTEST) for k in keys[1:]}
    assert r2.addresses(keys[2]) and r2.addresses(keys[2][1:]) and not r2.addresses(plain_pubkey(key(9)))
    r3 = SigningRequest.create(key(0), keys=keys, messages=[bytes(32)], chain=REGTEST)
    assert decode_record(r3.encode(), chain=REGTEST).endpoint is None


def test_topic_of_both_parities_is_the_same():
    k = plain_pubkey(key(5))
    flipped = bytes([k[0] ^ 1]) + k[1:]
    assert topic_for_requests(k, chain=REGTEST) == topic_for_requests(flipped, chain=REGTEST) == topic_for_requests(k[1:], chain=REGTEST)
    assert shard_of(k) == shard_of(flipped) == shard_of(k[1:])
    assert signer_topic("spend", k, REGTEST) == signer_topic("spend", flipped, REGTEST)
    assert len(topic_for_type("spend", REGTEST, 0)) == 20
    assert topic_for_type("spend", REGTEST, 0) != topic_for_type("swap", REGTEST, 0)
    with pytest.raises(InvalidField):
        topic_for_type("loan", REGTEST, 0)
    for bad in (-1, C.SIGNER_TOPIC_SHARDS, True, "1"):
        with pytest.raises(InvalidField):
            topic_for_type("spend", REGTEST, bad)


def test_signer_topics_are_sharded_by_owner_key():
    """One type's market is spread over SIGNER_TOPIC_SHARDS topics (issue 15 item 1)."""
    shards = type_topics("spend", REGTEST)
    assert len(set(shards)) == C.SIGNER_TOPIC_SHARDS > 1
    owners = [plain_pubkey(key(i)) for i in range(200)]
    used = {shard_of(o) for o in owners}
    assert used == set(range(C.SIGNER_TOPIC_SHARDS))  # 200 keys reach every shard
    for o in owners[:20]:
        assert signer_topic("spend", o, REGTEST) == shards[shard_of(o)]


def test_parity_byte_is_authenticated():
    a = ad()
    data = bytearray(a.encode())
    data[2 + C.CHAIN_ID_LEN] ^= 1  # 02 <-> 03: same x-only key, but the signed bytes changed
    with pytest.raises(InvalidSignature):
        decode_record(bytes(data), chain=REGTEST)


def test_forged_and_tampered_records_refused():
    a = ad()
    # someone else's key, signed by the attacker
    forged = resign(a, key(2))
    with pytest.raises(InvalidSignature):
        decode_record(forged.encode(), chain=REGTEST)
    # redirecting the endpoint of a genuine advertisement
    data = a.encode()
    tampered = data.replace(b"127.0.0.1", b"127.0.0.9")
    assert tampered != data
    with pytest.raises(InvalidSignature):
        decode_record(tampered, chain=REGTEST)
    # flipping any single bit anywhere is refused with a RecordError
    for i in range(len(data)):
        mutated = bytearray(data)
        mutated[i] ^= 0x10
        with pytest.raises(RecordError):
            decode_record(bytes(mutated), chain=REGTEST)


def test_time_checks():
    now = time.time()
    a = ad(ttl=1, now=now - 10)
    with pytest.raises(ExpiredRecord):
        decode_record(a.encode(), chain=REGTEST)
    assert decode_record(a.encode(), now=now - 9.5, chain=REGTEST) == a
    future = ad(now=now + C.MAX_CLOCK_SKEW_S + 60)
    with pytest.raises(FutureRecord):
        decode_record(future.encode(), now=now, chain=REGTEST)
    slight = ad(now=now + C.MAX_CLOCK_SKEW_S / 2)
    assert decode_record(slight.encode(), now=now, chain=REGTEST) == slight
    assert decode_record(a.encode(), check_expiry=False, chain=REGTEST) == a


def test_version_kind_size_and_structure_refusals():
    data = ad().encode()
    with pytest.raises(UnsupportedVersion):
        decode_record(bytes([C.RECORD_VERSION + 1]) + data[1:], chain=REGTEST)
    with pytest.raises(UnsupportedVersion):        # a version-1 record (before chain binding)
        decode_record(bytes([1]) + data[1:], chain=REGTEST)
    with pytest.raises(UnknownRecordKind):
        decode_record(data[:1] + bytes([9]) + data[2:], chain=REGTEST)
    with pytest.raises(OversizedRecord):
        decode_record(data + bytes(C.MAX_RECORD_BYTES), chain=REGTEST)
    with pytest.raises(MalformedRecord):
        decode_record(data[:-65], chain=REGTEST)
    with pytest.raises(MalformedRecord):
        decode_record(data[:-64] + b"\x00" + data[-64:], chain=REGTEST)  # trailing byte before the signature
    with pytest.raises(MalformedRecord):
        decode_record(b"", chain=REGTEST)
    with pytest.raises(MalformedRecord):
        decode_record("not bytes", chain=REGTEST)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    dict(min_amount_sat=10, max_amount_sat=5),
    dict(max_amount_sat=C.MAX_MONEY_SAT + 1),
    dict(reputation=101),
    dict(nickname="x" * 33),
    dict(nickname="evil\u202eoverride"),
    dict(nickname="bell\x07"),
    dict(description="d" * (C.MAX_DESCRIPTION_BYTES + 1)),
    dict(tx_types=[]),
    dict(tx_types=["loan"]),
    dict(host="bad host!"),
    dict(port=0),
    dict(port=70000),
    dict(trust_requirements=["UPPER"]),
    dict(trust_requirements=[f"t{i}" for i in range(C.MAX_TRUST_REQUIREMENTS + 1)]),
    dict(ttl=C.MAX_TTL_S + 1),
    dict(ttl=0),
    dict(seq=-1),
    dict(fee_per_signature_sat=-5),
])
def test_create_refuses_out_of_bound_fields(changes):
    with pytest.raises(InvalidField):
        ad(**changes)


def test_decoder_refuses_validly_signed_but_out_of_bound_fields():
    """An attacker signing with its own key still cannot smuggle bad values past decode."""
    a = ad(key(3))
    bad = resign(a, key(3), min_amount_sat=9_000_000)  # min > max
    with pytest.raises(InvalidField):
        decode_record(bad.unsigned_bytes() + bad.signature, chain=REGTEST)
    bad = resign(a, key(3), trust_requirements=("zz", "aa"))  # non-canonical order
    with pytest.raises(InvalidField):
        decode_record(bad.unsigned_bytes() + bad.signature, chain=REGTEST)


def test_request_bounds():
    keys = [plain_pubkey(key(i)) for i in range(3)]
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=keys, messages=[bytes(31)], chain=REGTEST)
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=keys + [keys[1]], messages=[bytes(32)], chain=REGTEST)
    flipped = bytes([keys[1][0] ^ 1]) + keys[1][1:]
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=keys + [flipped], messages=[bytes(32)], chain=REGTEST)
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=[b"\x02" + bytes(32)], messages=[bytes(32)], chain=REGTEST)
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=keys, messages=[bytes(32)],
                              payload=bytes(C.MAX_REQUEST_PAYLOAD_BYTES + 1), chain=REGTEST)
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=[], messages=[bytes(32)], chain=REGTEST)
    with pytest.raises(InvalidField):
        SigningRequest.create(key(0), keys=keys, messages=[bytes(32)] * (C.MAX_REQUEST_MESSAGES + 1), chain=REGTEST)
    big = SigningRequest.create(key(0), keys=[plain_pubkey(key(i)) for i in range(C.MAX_REQUEST_KEYS)],
                                messages=[bytes(32)] * C.MAX_REQUEST_MESSAGES,
                                payload=bytes(C.MAX_REQUEST_PAYLOAD_BYTES),
                                metadata="m" * C.MAX_REQUEST_METADATA_BYTES, host=".".join(["h" * 63] * 3), port=1, chain=REGTEST)
    assert len(big.encode()) <= C.MAX_RECORD_BYTES
    assert decode_record(big.encode(), chain=REGTEST) == big


def test_supersedes_orders_by_seq_then_deterministic_tiebreak():
    now = time.time()
    a1, a2 = ad(seq=5, now=now), ad(seq=6, now=now)
    assert supersedes(a2, a1) and not supersedes(a1, a2)
    b1 = ad(seq=5, now=now, nickname="one")
    b2 = ad(seq=5, now=now, nickname="two")
    assert supersedes(b1, b2) != supersedes(b2, b1)
    assert not supersedes(a1, a1)


def test_renewed_extends_life_with_higher_seq():
    a = ad(ttl=1)
    b = a.renewed(key(1), ttl=100)
    assert b.seq > a.seq and b.expires_at > a.expires_at and b.nickname == a.nickname
    assert decode_record(b.encode(), chain=REGTEST) == b
    with pytest.raises(InvalidField):
        a.renewed(key(2))


def test_peek_slot_matches_the_verified_slot():
    from musig2_plugin.records import peek_slot
    a = ad()
    w = Withdrawal.for_advertisement(key(1), a)
    r = SigningRequest.create(key(0), keys=[plain_pubkey(key(0)), plain_pubkey(key(1))],
                              messages=[bytes(32)], chain=REGTEST)
    for rec in (a, w, r):
        assert peek_slot(rec.encode()) == rec.slot
    assert peek_slot(b"") is None and peek_slot(bytes([C.RECORD_VERSION + 1]) + a.encode()[1:]) is None
    assert peek_slot(a.encode()[:1] + b"\x09" + a.encode()[2:]) is None
