"""PSBT strictness (issue 14, item 4): every BIP-373/taproot field is checked on read, outputs
derived by BIP-328 are accepted with valid fields, and output errors name the output.

Each test here failed on the code at a0f8909 (skipped 98-byte/foreign entries, unchecked 0x17,
a derived MuSig2 output refusing the whole spend, "input N" for output fields).
"""
from __future__ import annotations

import hashlib

import pytest

from musig2_plugin import crypto
from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, PsbtFieldError, build_spend,
                                         musig_inputs, parse_psbt, psbt_base64, review_spend,
                                         sighashes)
from musig2_plugin.wallet_bridge import psbt_fields as pf

SECRETS = [hashlib.sha256(b"strict %d" % i).digest() for i in range(3)]
KEYS = [crypto.plain_pubkey(s) for s in SECRETS]


def _hash160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


def _tx(out: MusigOutput, outputs=None):
    coin = MusigCoin(hashlib.sha256(b"coin").hexdigest(), 0, 100_000, out)
    if outputs is None:
        outputs = [(out.address(), 99_000)]
    return build_spend([coin], outputs, fee_sats=1_000)


def _reparse(tx):
    return parse_psbt(psbt_base64(tx))


@pytest.fixture
def out(electrum_loop):
    return MusigOutput.from_pubkeys(KEYS)


@pytest.mark.parametrize("key_len", [66, 98])
@pytest.mark.parametrize("defect", ["short value", "uncompressed participant", "bad aggregate"])
def test_foreign_session_entries_are_checked_before_being_skipped(out, key_len, defect):
    """A nonce entry for a tapleaf (98-byte key) or another aggregate key is not ours, but it is
    forwarded with the PSBT: a malformed one is refused, not passed on silently."""
    tx = _tx(out)
    other_agg = MusigOutput.from_pubkeys(KEYS[:2]).output_key
    participant, agg, value = KEYS[0], other_agg, b"\x02" * 66
    if defect == "short value":
        value = value[:-1]
    elif defect == "uncompressed participant":
        participant = b"\x04" + participant[1:]
    else:
        agg = b"\x07" + agg[1:]
    key = participant + agg + (b"\x11" * 32 if key_len == 98 else b"")
    tx.inputs()[0]._unknown[bytes([pf.IN_MUSIG2_PUB_NONCE]) + key] = value
    t = _reparse(tx)
    with pytest.raises(PsbtFieldError, match="input 0"):
        pf.pubnonces(t.inputs()[0], out.output_key, 0)


def test_well_formed_foreign_entries_are_kept_and_ignored(out):
    tx = _tx(out)
    other = MusigOutput.from_pubkeys(KEYS[:2]).output_key
    tx.inputs()[0]._unknown[bytes([pf.IN_MUSIG2_PUB_NONCE]) + KEYS[0] + other + b"\x11" * 32] = (
        b"\x02" * 66)
    tx.inputs()[0]._unknown[bytes([pf.IN_MUSIG2_PUB_NONCE]) + KEYS[1] + other] = b"\x03" * 66
    t = _reparse(tx)
    assert pf.pubnonces(t.inputs()[0], out.output_key, 0) == {}
    assert len([k for k in t.inputs()[0]._unknown if k[0] == pf.IN_MUSIG2_PUB_NONCE]) == 2


@pytest.mark.parametrize("value,message", [
    (b"\x01" * 32, "not the MuSig2 aggregate key"),
    (b"\x01" * 31, "must be 32 bytes"),
    (b"\x01" * 33, "must be 32 bytes"),
])
def test_taproot_internal_key_field_is_validated_on_read(out, value, message):
    tx = _tx(out)
    tx.inputs()[0]._unknown[bytes([pf.IN_TAP_INTERNAL_KEY])] = value
    with pytest.raises(PsbtFieldError, match=message):
        musig_inputs(_reparse(tx))


def test_taproot_internal_key_field_with_key_data_is_refused(out):
    tx = _tx(out)
    tx.inputs()[0]._unknown[bytes([pf.IN_TAP_INTERNAL_KEY]) + b"\x00"] = out.internal_key[1:]
    with pytest.raises(PsbtFieldError, match="key data"):
        musig_inputs(_reparse(tx))


def _derived_output_fields(txout, keys, path, *, fingerprint=None, derived_path=None):
    """The fields Bitcoin Core writes for an output ``tr(musig(K...)/path)`` (BIP-373 + BIP-328)."""
    agg = MusigOutput.from_pubkeys(keys).internal_key
    child = crypto.bip328_derive(crypto.key_sort(list(keys)), derived_path or path)
    internal = child.aggregate_pubkey()[1:]
    u = txout._unknown
    u[bytes([pf.OUT_TAP_INTERNAL_KEY])] = internal
    u[bytes([pf.OUT_MUSIG2_PARTICIPANT_PUBKEYS]) + agg] = b"".join(crypto.key_sort(list(keys)))
    value = b"\x00" + (fingerprint or _hash160(agg)[:4]) + b"".join(
        i.to_bytes(4, "little") for i in path)
    u[bytes([pf.OUT_TAP_BIP32_DERIVATION]) + internal] = value
    return internal


def _derived_address(keys, path):
    from electrum import segwit_addr
    from electrum.bitcoin import taproot_output_script
    from electrum import constants as ec
    internal = crypto.bip328_derive(crypto.key_sort(list(keys)), path).aggregate_pubkey()[1:]
    spk = taproot_output_script(internal, script_tree=None)
    return segwit_addr.encode_segwit_address(ec.net.SEGWIT_HRP, 1, spk[2:])


def test_spend_paying_a_bip328_derived_musig_output_is_reviewed_not_refused(out):
    path = (0, 7)
    dest = _derived_address(KEYS, path)
    tx = _tx(out, outputs=[(dest, 99_000)])
    _derived_output_fields(tx.outputs()[0], KEYS, path)
    t = _reparse(tx)
    review = review_spend(t, KEYS[0], sighashes(t))
    got = review.to_json()["outputs"][0]
    assert got["address"] == dest and got["musig_derivation"] == [0, 7]
    assert got["musig_descriptor"] == out.descriptor


@pytest.mark.parametrize("defect", ["wrong path", "wrong fingerprint", "no derivation"])
def test_unprovable_derived_output_is_refused_naming_the_output(out, defect):
    path = (0, 7)
    dest = _derived_address(KEYS, path)
    change = MusigOutput.from_pubkeys(KEYS[:2]).address()
    tx = _tx(out, outputs=[(change, 50_000), (dest, 49_000)])
    kw = {}
    if defect == "wrong path":
        kw["derived_path"] = path
        path = (0, 8)
    elif defect == "wrong fingerprint":
        kw["fingerprint"] = b"\x00\x01\x02\x03"
    internal = _derived_output_fields(tx.outputs()[1], KEYS, path, **kw)
    if defect == "no derivation":
        del tx.outputs()[1]._unknown[bytes([pf.OUT_TAP_BIP32_DERIVATION]) + internal]
    t = _reparse(tx)
    with pytest.raises(PsbtFieldError) as info:
        review_spend(t, KEYS[0], sighashes(t))
    assert str(info.value).startswith("output 1: ")
    assert info.value.output_index == 1 and info.value.input_index is None


def test_output_field_errors_say_output(out):
    tx = _tx(out)
    o = tx.outputs()[0]
    pf.set_output_musig_info(o, out, 0)
    with pytest.raises(PsbtFieldError, match="^output 0: a different"):
        pf.set_output_musig_info(o, MusigOutput.from_pubkeys(KEYS[:2]), 0)
    o._unknown[bytes([pf.OUT_MUSIG2_PARTICIPANT_PUBKEYS]) + out.internal_key] = b"\x02" * 32
    with pytest.raises(PsbtFieldError, match="^output 0: MuSig2 participant list has a bad"):
        pf.read_output_participants(o, 0)
