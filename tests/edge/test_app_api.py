"""The application API the edge calls (app/service.py, app/review.py), on real Electrum PSBTs
(the BIP-373 vectors) and a real vault store: create output, combine PSBTs, review, types."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from musig2_plugin import app
from musig2_plugin.wallet_bridge import (InvalidParticipants, MalformedPsbt, MusigOutput,
                                         ParticipantMismatch, SighashMismatch, VaultStore, keypath_sighash,
                                         musig_inputs, parse_psbt, psbt_base64, review_spend)
from musig2_plugin.wallet_bridge import psbt_fields as pf

V = json.loads((Path(__file__).parent / "vectors" / "bip373_keypath_internal.json").read_text())
K2 = bytes.fromhex("02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9")
K3 = bytes.fromhex("03dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659")
ME = bytes.fromhex("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")


def test_create_output_adds_me_and_refuses_bad_arguments():
    storage: dict = {}
    stored = app.create_output(VaultStore(storage), ME, keys=[K2, K3], label="three")
    assert set(stored.output.participants) == {ME, K2, K3} and stored.label == "three"
    assert VaultStore(storage).find(stored.output.address()).output == stored.output
    # the same output by descriptor: remembered once
    again = app.create_output(VaultStore(storage), ME, descriptor=stored.output.descriptor)
    assert again.output == stored.output and len(VaultStore(storage).all()) == 1
    with pytest.raises(app.BadArgument, match="either keys or descriptor"):
        app.create_output(VaultStore(storage), ME)
    with pytest.raises(app.BadArgument, match="either keys or descriptor"):
        app.create_output(VaultStore(storage), ME, keys=[K2], descriptor=stored.output.descriptor)
    without_me = MusigOutput.from_pubkeys([K2, K3]).descriptor
    with pytest.raises(InvalidParticipants, match="not in this descriptor"):
        app.create_output(VaultStore(storage), ME, descriptor=without_me)
    assert len(VaultStore(storage).all()) == 1                  # refusals changed nothing


def test_tx_type_names_the_known_ones():
    assert app.tx_type("custody") is app.TxType.CUSTODY
    with pytest.raises(app.BadArgument, match="unknown transaction type 'teleport'.*spend"):
        app.tx_type("teleport")


def test_combine_psbts_merges_and_refuses_disagreement(electrum_loop):
    combined = app.combine_psbts([V["psbt_pubkeys_only"], V["psbt_all_partial_sigs"]])
    out = musig_inputs(combined)[0]
    assert set(pf.partial_sigs(combined.inputs()[0], out.output_key)) == set(out.participants)
    # one participant's nonce replaced in a second file: refused, not last-writer-wins
    tx2 = parse_psbt(V["psbt_all_partial_sigs"])
    txin = tx2.inputs()[0]
    pf.clear_session_fields(txin)
    pf.add_pubnonce(txin, out.participants[0], out.output_key, b"\x02" * 66)
    with pytest.raises(MalformedPsbt, match="disagree on a MuSig2 field"):
        app.combine_psbts([V["psbt_all_partial_sigs"], psbt_base64(tx2)])
    other = parse_psbt(V["psbt_pubkeys_only"])
    other.locktime = 7
    with pytest.raises(MalformedPsbt, match="not for the same transaction"):
        app.combine_psbts([V["psbt_pubkeys_only"], psbt_base64(other)])
    with pytest.raises(MalformedPsbt, match="give 1 to 100"):
        app.combine_psbts([])
    with pytest.raises(MalformedPsbt, match="give 1 to 100"):
        app.combine_psbts([V["psbt_pubkeys_only"]] * 101)
    with pytest.raises(MalformedPsbt):
        app.combine_psbts(["not a psbt"])


def test_review_psbt_and_prepare_own_spend(electrum_loop):
    tx = parse_psbt(V["psbt_pubkeys_only"])
    me = musig_inputs(tx)[0].participants[0]
    msg = keypath_sighash(tx, 0)
    own = app.prepare_own_spend(tx, me)
    assert own.sighashes == {0: msg} and own.inputs == (0,)
    out = musig_inputs(tx)[0]
    assert own.key_sets == frozenset({(out.participants, out.merkle_root)})
    assert own.review.to_json() == review_spend(tx, me, {0: msg}).to_json()
    assert app.review_psbt(tx, me).to_json() == own.review.to_json()
    with pytest.raises(SighashMismatch):
        app.review_psbt(tx, me, {0: bytes(32)})
    outsider = next(k for k in (K2, K3, ME) if k not in musig_inputs(tx)[0].participants)
    with pytest.raises(ParticipantMismatch, match="no input of this transaction is ours"):
        app.prepare_own_spend(tx, outsider)                     # not a participant
