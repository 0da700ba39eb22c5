"""BIP-373 PSBT fields through Electrum's own PSBT code, checked against the BIP's vectors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from musig2_plugin import crypto
from musig2_plugin.wallet_bridge import (MalformedPsbt, MusigOutput, PsbtFieldError, finalize,
                                         keypath_sighash, musig_inputs, parse_psbt, psbt_base64)
from musig2_plugin.wallet_bridge import psbt_fields as pf
from musig2_plugin.wallet_bridge.spend import attach_signature

V = json.loads((Path(__file__).parent / "vectors" / "bip373_keypath_internal.json").read_text())


def _vector_tx(name="psbt_all_partial_sigs"):
    return parse_psbt(V[name])


def test_vector_fields_read_back_and_round_trip_byte_exact(electrum_loop):
    for name in ("psbt_pubkeys_only", "psbt_all_partial_sigs"):
        tx = _vector_tx(name)
        # Electrum keeps the unknown key types and writes them back unchanged
        assert tx.serialize_as_bytes(force_psbt=True).hex() == V[name]
        assert parse_psbt(psbt_base64(tx)).serialize_as_bytes(force_psbt=True).hex() == V[name]
    tx = _vector_tx()
    out = musig_inputs(tx)[0]
    assert out.internal_key.hex() == V["aggregate_pubkey"]
    assert [k.hex() for k in out.participants] == V["participants"]
    assert out.output_key.hex() == V["output_key"]
    txin = tx.inputs()[0]
    assert set(pf.pubnonces(txin, out.output_key)) == set(out.participants)
    assert set(pf.partial_sigs(txin, out.output_key)) == set(out.participants)
    # keyed by the output key Q: under the internal key P nothing is found
    assert pf.pubnonces(txin, out.internal_key) == {}


def test_electrum_sighash_and_vector_partial_sigs_give_the_vectors_signature(electrum_loop):
    """Electrum's BIP-341 sighash + the vector's nonces and partial signatures + our
    crypto layer = exactly the tap_key_sig the BIP lists."""
    tx = _vector_tx()
    out = musig_inputs(tx)[0]
    txin = tx.inputs()[0]
    nonces = pf.pubnonces(txin, out.output_key)
    psigs = pf.partial_sigs(txin, out.output_key)
    msg = keypath_sighash(tx, 0)
    session = crypto.SigningSession.from_pubnonces(out.keyagg(), [nonces[k] for k in out.participants], msg)
    for i, k in enumerate(out.participants):
        assert session.partial_sig_verify(psigs[k], nonces[k], i)
    sig = session.aggregate([psigs[k] for k in out.participants])
    assert sig.hex() == V["tap_key_sig"] == txin.tap_key_sig.hex()
    assert crypto.schnorr_verify(out.xonly_output_key, msg, sig)
    # finalize through Electrum: one-item witness, complete network transaction
    txin.tap_key_sig = None
    attach_signature(tx, 0, sig)
    final = finalize(tx)
    assert final.is_complete()
    raw = final.serialize()
    assert sig.hex() in raw and not raw.startswith("70736274")


def test_field_writers_refuse_bad_values(electrum_loop):
    tx = _vector_tx("psbt_pubkeys_only")
    txin = tx.inputs()[0]
    out = musig_inputs(tx)[0]
    k = out.participants[0]
    with pytest.raises(PsbtFieldError):
        pf.add_pubnonce(txin, k, out.output_key, b"\x02" * 65)
    with pytest.raises(PsbtFieldError):
        pf.add_partial_sig(txin, k, out.output_key, b"\x01" * 33)
    with pytest.raises(PsbtFieldError):
        pf.add_pubnonce(txin, k[1:], out.output_key, b"\x02" * 66)
    pf.add_pubnonce(txin, k, out.output_key, b"\x02" * 66)
    pf.add_pubnonce(txin, k, out.output_key, b"\x02" * 66)       # same value again: fine
    with pytest.raises(PsbtFieldError, match="already present"):
        pf.add_pubnonce(txin, k, out.output_key, b"\x03" * 66)   # a replaced nonce: refused
    pf.clear_session_fields(txin)
    assert pf.pubnonces(txin, out.output_key) == {}


def _with_unknown(mutate) -> str:
    tx = _vector_tx("psbt_pubkeys_only")
    mutate(tx.inputs()[0]._unknown)
    return psbt_base64(tx)


def test_malformed_participant_fields_refused(electrum_loop):
    agg = bytes.fromhex(V["aggregate_pubkey"])
    keys = b"".join(bytes.fromhex(k) for k in V["participants"])
    cases = {
        "bad length": (lambda u: u.__setitem__(b"\x1a" + agg, keys[:-1]), "bad length"),
        "not aggregate": (lambda u: (u.pop(b"\x1a" + agg), u.__setitem__(b"\x1a" + b"\x02" + agg[1:], keys)),
                          "do not aggregate"),
        "unsorted": (lambda u: u.__setitem__(b"\x1a" + agg, keys[33:66] + keys[:33] + keys[66:]),
                     "KeySort"),
        "two aggregates": (lambda u: u.__setitem__(b"\x1a" + b"\x02" + agg[1:], keys), "more than one"),
        "uncompressed": (lambda u: u.__setitem__(b"\x1a" + agg, b"\x04" + keys[1:]), "not a compressed"),
    }
    for name, (mutate, message) in cases.items():
        tx = parse_psbt(_with_unknown(mutate))
        with pytest.raises(PsbtFieldError, match=message):
            musig_inputs(tx)


def test_garbage_psbts_refused(electrum_loop):
    for data in ["", "cHNidP8=", "70736274ff00", "not base64 at all", b"psbt\xff\x00",
                 V["psbt_pubkeys_only"][:-10], "AA" * 10]:
        with pytest.raises(MalformedPsbt):
            parse_psbt(data)


def test_output_field_round_trip(electrum_loop):
    tx = _vector_tx("psbt_pubkeys_only")
    out = MusigOutput.from_pubkeys(bytes.fromhex(k) for k in V["participants"])
    pf.set_output_musig_info(tx.outputs()[0], out)
    tx2 = parse_psbt(psbt_base64(tx))
    agg, keys = pf.read_output_participants(tx2.outputs()[0])
    assert agg == out.internal_key and keys == out.participants
    assert tx2.outputs()[0]._unknown[b"\x05"] == out.internal_key[1:]
