"""Happy and failure paths of the MuSig2 API on real libsecp256k1 (no mocks)."""
from __future__ import annotations

import copy
import os
import pickle

import pytest

from musig2_plugin.crypto import (CryptoError, InvalidMessageLength, InvalidPartialSig,
                                  InvalidPubNonce, InvalidPublicKey, InvalidSecretKey,
                                  InvalidTweak, KeyAggContext, NonceReuseError, SecretNonce,
                                  SigningSession, key_sort, nonce_agg, nonce_gen, plain_pubkey,
                                  schnorr_verify, tagged_hash)


def _signers(n: int) -> list[tuple[bytes, bytes]]:
    sks = [os.urandom(32) for _ in range(n)]
    pairs = [(plain_pubkey(sk), sk) for sk in sks]
    return sorted(pairs)


def _session(n: int, keyagg_fn=lambda k: k):
    pairs = _signers(n)
    keyagg = keyagg_fn(KeyAggContext.from_pubkeys([pk for pk, _ in pairs]))
    msg = os.urandom(32)
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg) for pk, sk in pairs]
    session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    return pairs, keyagg, msg, nonces, session


def test_three_of_three_with_taproot_tweak_verifies_under_output_key():
    pairs, keyagg, msg, nonces, session = _session(3, lambda k: k.with_taproot_tweak())
    psigs = [session.partial_sign(sn, sk) for (sn, _), (_, sk) in zip(nonces, pairs)]
    sig = session.aggregate(psigs)
    assert schnorr_verify(keyagg.xonly(), msg, sig)
    assert not schnorr_verify(keyagg.internal_xonly(), msg, sig)
    # Q = P + hash_TapTweak(x(P))·G, recomputed independently with coincurve.
    from coincurve import PublicKey
    internal = KeyAggContext.from_pubkeys(keyagg.pubkeys)
    p = PublicKey(internal.aggregate_pubkey())
    if p.format()[0] == 3:  # lift_x: BIP-341 uses the even-y point for x(P)
        p = PublicKey(b"\x02" + p.format()[1:])
    t = tagged_hash("TapTweak", internal.xonly())
    assert p.add(t).format()[1:] == keyagg.xonly()
    assert keyagg.internal_xonly() == internal.xonly()


def test_taproot_tweak_with_merkle_root_changes_output_key():
    pairs = _signers(2)
    base = KeyAggContext.from_pubkeys([pk for pk, _ in pairs])
    a = base.with_taproot_tweak()
    b = base.with_taproot_tweak(b"\x11" * 32)
    assert a.xonly() != b.xonly() and a.internal_xonly() == b.internal_xonly() == base.xonly()
    with pytest.raises(InvalidTweak):
        base.with_taproot_tweak(b"\x11" * 31)


def test_tweak_returns_new_object_and_leaves_original():
    pairs = _signers(2)
    base = KeyAggContext.from_pubkeys([pk for pk, _ in pairs])
    before = base.aggregate_pubkey()
    tweaked = base.with_tweak(b"\x01" * 32, xonly=False)
    assert base.aggregate_pubkey() == before != tweaked.aggregate_pubkey()
    with pytest.raises(InvalidTweak):
        base.with_tweak(b"\xff" * 32, xonly=True)  # >= group order
    with pytest.raises(InvalidTweak):
        base.with_tweak(b"\x01" * 31, xonly=True)


def test_secret_nonce_is_one_shot_and_not_exportable():
    pairs, keyagg, msg, nonces, session = _session(2)
    secnonce = nonces[0][0]
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps, bytes):
        with pytest.raises(NonceReuseError):
            attempt(secnonce)
    with pytest.raises(CryptoError):
        SecretNonce()  # no way to build (or import) one outside nonce_gen
    session.partial_sign(secnonce, pairs[0][1])
    assert secnonce.consumed
    with pytest.raises(NonceReuseError):
        session.partial_sign(secnonce, pairs[0][1])
    # A different session with the same (spent) nonce is refused too.
    other = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], os.urandom(32))
    with pytest.raises(NonceReuseError):
        other.partial_sign(secnonce, pairs[0][1])


def test_wrong_signer_key_is_refused_without_consuming_valid_use():
    pairs, keyagg, msg, nonces, session = _session(2)
    stranger = os.urandom(32)
    with pytest.raises(InvalidSecretKey):
        session.partial_sign(nonces[0][0], stranger)
    assert not nonces[0][0].consumed
    # signer 1's key with signer 0's nonce: the nonce is retired, nothing is signed
    with pytest.raises(InvalidSecretKey):
        session.partial_sign(nonces[0][0], pairs[1][1])
    assert nonces[0][0].consumed


@pytest.mark.parametrize("length", [0, 1, 31, 33, 38, 64])
def test_messages_other_than_32_bytes_are_refused(length):
    pairs, keyagg, msg, nonces, session = _session(2)
    with pytest.raises(InvalidMessageLength):
        SigningSession(keyagg, session.aggnonce, b"\x26" * length)
    with pytest.raises(InvalidMessageLength):
        nonce_gen(pubkey=pairs[0][0], msg=b"\x26" * length)


def test_bad_pubkey_is_blamed_by_index():
    pairs = _signers(3)
    pks = [pk for pk, _ in pairs]
    for bad in (b"\x02" + b"\x00" * 31 + b"\x05", b"\x04" + pks[1][1:], pks[1][:-1], "str"):
        with pytest.raises(InvalidPublicKey) as info:
            KeyAggContext.from_pubkeys([pks[0], bad, pks[2]])
        assert info.value.index == 1
        with pytest.raises(InvalidPublicKey) as info:
            key_sort([pks[0], pks[2], bad])
        assert info.value.index == 2


def test_bad_pubnonce_is_blamed_by_index():
    pairs, keyagg, msg, nonces, session = _session(3)
    pubnonces = [pn for _, pn in nonces]
    bad = pubnonces[2][:33] + b"\x04" + pubnonces[2][34:]
    with pytest.raises(InvalidPubNonce) as info:
        nonce_agg([pubnonces[0], pubnonces[1], bad])
    assert info.value.index == 2
    with pytest.raises(InvalidPubNonce) as info:
        SigningSession.from_pubnonces(keyagg, [pubnonces[0], pubnonces[1][:65], pubnonces[2]], msg)
    assert info.value.index == 1


def test_bad_partial_sig_is_blamed_by_index():
    pairs, keyagg, msg, nonces, session = _session(3)
    psigs = [session.partial_sign(sn, sk) for (sn, _), (_, sk) in zip(nonces, pairs)]
    tampered = psigs[1][:-1] + bytes([psigs[1][-1] ^ 1])
    with pytest.raises(InvalidPartialSig) as info:
        session.aggregate([psigs[0], tampered, psigs[2]])
    assert info.value.index == 1
    assert not session.partial_sig_verify(tampered, nonces[1][1], 1)
    assert session.partial_sig_verify(psigs[1], nonces[1][1], 1)
    with pytest.raises(InvalidPartialSig) as info:
        session.aggregate([psigs[0], psigs[1], b"\xff" * 32])  # not below the group order
    assert info.value.index == 2
    with pytest.raises(InvalidPartialSig):
        session.partial_sig_verify(psigs[0], nonces[0][1], 7)


def test_session_rejects_pubnonces_not_matching_aggnonce():
    pairs, keyagg, msg, nonces, session = _session(2)
    pubnonces = [pn for _, pn in nonces]
    with pytest.raises(CryptoError):
        SigningSession(keyagg, session.aggnonce, msg, list(reversed(pubnonces[:1])) + pubnonces[:1])


def test_empty_and_oversized_inputs_are_refused():
    with pytest.raises(InvalidPublicKey):
        KeyAggContext.from_pubkeys([])
    with pytest.raises(InvalidPubNonce):
        nonce_agg([])
    pk = plain_pubkey(b"\x01" * 32)
    with pytest.raises(CryptoError):
        KeyAggContext.from_pubkeys([pk] * 101)
