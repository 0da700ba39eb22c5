"""Property tests (hypothesis) of full MuSig2 sessions on real libsecp256k1."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musig2_plugin.crypto import (InvalidPartialSig, InvalidPubNonce, KeyAggContext,
                                  NonceReuseError, SigningSession, key_sort, nonce_gen,
                                  plain_pubkey, schnorr_verify)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

seckeys = st.integers(min_value=1, max_value=N - 1).map(lambda k: k.to_bytes(32, "big"))
tweaks = st.lists(st.tuples(st.integers(min_value=0, max_value=N - 1)
                            .map(lambda t: t.to_bytes(32, "big")), st.booleans()), max_size=3)


def _setup(sks, tweak_list, taproot):
    by_pk = {plain_pubkey(sk): sk for sk in sks}
    pks = key_sort([plain_pubkey(sk) for sk in sks])
    keyagg = KeyAggContext.from_pubkeys(pks)
    for tweak, xonly in tweak_list:
        keyagg = keyagg.with_tweak(tweak, xonly=xonly)
    if taproot:
        keyagg = keyagg.with_taproot_tweak(None if taproot == 1 else b"\x5a" * 32)
    return keyagg, [by_pk[pk] for pk in pks]


def _round1(keyagg, sks, msg):
    return [nonce_gen(pubkey=plain_pubkey(sk), seckey=sk, keyagg=keyagg, msg=msg) for sk in sks]


@settings(max_examples=40, **SETTINGS)
@given(sks=st.lists(seckeys, min_size=1, max_size=20), tweak_list=tweaks,
       taproot=st.integers(0, 2), msg=st.binary(min_size=32, max_size=32))
def test_random_sessions_verify(sks, tweak_list, taproot, msg):
    keyagg, ordered = _setup(sks, tweak_list, taproot)
    nonces = _round1(keyagg, ordered, msg)
    session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    psigs = [session.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
    for i, (psig, (_, pn)) in enumerate(zip(psigs, nonces)):
        assert session.partial_sig_verify(psig, pn, i)
    sig = session.aggregate(psigs)
    assert schnorr_verify(keyagg.xonly(), msg, sig)
    assert not schnorr_verify(keyagg.xonly(), bytes([msg[0] ^ 1]) + msg[1:], sig)


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), n=st.integers(1, 6), what=st.sampled_from(["pubnonce", "psig"]),
       tweaked=st.booleans())
def test_any_flipped_byte_is_blamed_on_its_sender(data, n, what, tweaked):
    """The coordinator holds every public nonce (from_pubnonces).  A flipped pubnonce
    either fails to parse (blamed at aggregation) or parses to another point: then the
    signers sign under the wrong aggregate nonce, and only the victim's partial signature
    fails against the nonce the coordinator holds -- blamed on that index too."""
    sks = [os.urandom(32) for _ in range(n)]
    keyagg, ordered = _setup(sks, [(os.urandom(32), True)] if tweaked else [], 1)
    msg = os.urandom(32)
    nonces = _round1(keyagg, ordered, msg)
    pubnonces = [pn for _, pn in nonces]
    culprit = data.draw(st.integers(0, n - 1), label="culprit")
    size = 66 if what == "pubnonce" else 32
    pos = data.draw(st.integers(0, size - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="xor")

    if what == "pubnonce":
        received = list(pubnonces)
        received[culprit] = (received[culprit][:pos] + bytes([received[culprit][pos] ^ mask])
                             + received[culprit][pos + 1:])
        try:
            coordinator = SigningSession.from_pubnonces(keyagg, received, msg)
        except InvalidPubNonce as exc:
            assert exc.index == culprit
            return
        # Every signer gets the (wrong) aggregate nonce from the coordinator and signs.
        signer_view = SigningSession(keyagg, coordinator.aggnonce, msg)
        psigs = [signer_view.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
    else:
        coordinator = SigningSession.from_pubnonces(keyagg, pubnonces, msg)
        psigs = [coordinator.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
        psigs[culprit] = psigs[culprit][:pos] + bytes([psigs[culprit][pos] ^ mask]) + psigs[culprit][pos + 1:]

    with pytest.raises(InvalidPartialSig) as info:
        coordinator.aggregate(psigs)
    assert info.value.index == culprit
    for i in range(n):
        if i != culprit:
            assert coordinator.partial_sig_verify(psigs[i], coordinator.pubnonces[i], i)


@settings(max_examples=15, **SETTINGS)
@given(n=st.integers(1, 5), second_msg=st.booleans())
def test_secret_nonce_used_twice_raises(n, second_msg):
    sks = [os.urandom(32) for _ in range(n)]
    keyagg, ordered = _setup(sks, [], 1)
    msg = os.urandom(32)
    nonces = _round1(keyagg, ordered, msg)
    session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    first = session.partial_sign(nonces[0][0], ordered[0])
    other = (SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], os.urandom(32))
             if second_msg else session)
    with pytest.raises(NonceReuseError):
        other.partial_sign(nonces[0][0], ordered[0])
    # Still alive, and the first signature is still good.
    assert session.partial_sig_verify(first, nonces[0][1], 0)


def test_every_byte_of_every_contribution_exhaustively():
    """Deterministic sweep complementing the property above: every byte of every signer's
    public nonce and partial signature (n=3), low bit flipped.  Both blame paths
    (unparsable nonce, parsable-but-wrong nonce) are exercised and counted."""
    n = 3
    keyagg, ordered = _setup([os.urandom(32) for _ in range(n)], [], 1)
    msg = os.urandom(32)
    paths = {"unparsable": 0, "wrong-point": 0, "psig": 0}
    for culprit in range(n):
        for pos in range(66):
            nonces = _round1(keyagg, ordered, msg)
            received = [pn for _, pn in nonces]
            received[culprit] = received[culprit][:pos] + bytes([received[culprit][pos] ^ 1]) + received[culprit][pos + 1:]
            try:
                coordinator = SigningSession.from_pubnonces(keyagg, received, msg)
            except InvalidPubNonce as exc:
                assert exc.index == culprit
                paths["unparsable"] += 1
                continue
            view = SigningSession(keyagg, coordinator.aggnonce, msg)
            psigs = [view.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
            with pytest.raises(InvalidPartialSig) as info:
                coordinator.aggregate(psigs)
            assert info.value.index == culprit
            paths["wrong-point"] += 1
        nonces = _round1(keyagg, ordered, msg)
        coordinator = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
        good = [coordinator.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, ordered)]
        for pos in range(32):
            psigs = list(good)
            psigs[culprit] = psigs[culprit][:pos] + bytes([psigs[culprit][pos] ^ 1]) + psigs[culprit][pos + 1:]
            with pytest.raises(InvalidPartialSig) as info:
                coordinator.aggregate(psigs)
            assert info.value.index == culprit
            paths["psig"] += 1
        assert coordinator.aggregate(good)
    assert paths["unparsable"] > 0 and paths["wrong-point"] > 0 and paths["psig"] == 32 * n
