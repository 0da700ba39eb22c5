"""Spending MuSig2 coins: three real Electrum wallets sign a two-input PSBT, and every
co-signer refusal. Coins are made-up outpoints here (no chain); the node's verdict on
real coins is in tests/edge/test_chain_e2e.py."""
from __future__ import annotations

import hashlib

import pytest
from electrum import constants as ec
from electrum.transaction import Transaction

from musig2_plugin import crypto
from musig2_plugin.wallet_bridge import (BridgeError, InvalidFinalSignature, MissingInputInfo,
                                         MusigCoin, MusigOutput, NotAMusigInput,
                                         ParticipantMismatch, PsbtSigner, SighashMismatch,
                                         SpendBuildError, aggregate_all, attach_signature,
                                         build_spend, derive_participant_key, finalize,
                                         keypath_sighash, parse_psbt, participant_secret,
                                         psbt_base64, review_spend, sighashes)


def _txid(n: int) -> str:
    return hashlib.sha256(b"funding %d" % n).hexdigest()


@pytest.fixture(scope="module")
def trio_wallets(module_wallets):
    ws = [module_wallets.new(password=f"pw{i}")[0] for i in range(3)]
    return ws, [derive_participant_key(w, f"pw{i}").pubkey for i, w in enumerate(ws)]


@pytest.fixture
def trio(trio_wallets):
    """Three real wallets, their participant keys, fresh signers and one 3-of-3 MuSig2 output."""
    ws, keys = trio_wallets
    signers = [PsbtSigner(keys[i], (lambda w=w, i=i: participant_secret(w, f"pw{i}")))
               for i, w in enumerate(ws)]
    out = MusigOutput.from_pubkeys(keys)
    return ws, keys, signers, out


def _spend(out, ws, values=(60_000, 45_000), fee=1_000, **kw):
    coins = [MusigCoin(_txid(i), i, v, out) for i, v in enumerate(values)]
    dest = ws[0].get_receiving_address()
    total = sum(values)
    return build_spend(coins, [(dest, total - fee)], fee_sats=fee, **kw)


def test_three_wallets_sign_two_inputs_through_psbt_files(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws)
    assert len(tx.inputs()) == 2
    psbt = psbt_base64(tx)
    for s in signers:                       # round 1: each adds its nonces, passes the file on
        t = parse_psbt(psbt)
        review = s.round1(t)
        assert sorted(review.messages) == [0, 1] and review.fee_sats == 1_000
        psbt = psbt_base64(t)
    for s in signers:                       # round 2
        t = parse_psbt(psbt)
        assert s.round2(t) == [0, 1]
        psbt = psbt_base64(t)
    t = parse_psbt(psbt)
    sigs = aggregate_all(t)
    msgs = sighashes(t)
    for i, sig in sigs.items():
        assert crypto.schnorr_verify(out.xonly_output_key, msgs[i], sig)
    final = finalize(t)
    raw = final.serialize()
    parsed = Transaction(raw)
    parsed.deserialize()
    assert [len(w) for w in (txin.witness for txin in parsed.inputs())] == [66, 66]
    assert parsed.txid() == tx.txid()
    # a second round 2 has no nonce left: the secret nonce was consumed
    with pytest.raises(BridgeError, match="no round-1 nonce"):
        signers[0].round2(parse_psbt(psbt))


def test_sighash_is_electrums_and_commits_to_all_amounts(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws)
    m = sighashes(tx)
    tx2 = _spend(out, ws, values=(60_000, 45_001), fee=1_001)   # same outputs, other amount in input 1
    assert keypath_sighash(tx2, 0) != m[0]                      # BIP-341: input 0 commits to input 1's amount


def test_cosigner_refuses_message_that_differs(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws)
    m = sighashes(tx)
    bad = bytearray(m[1]); bad[0] ^= 1
    with pytest.raises(SighashMismatch) as info:
        review_spend(tx, keys[1], {0: m[0], 1: bytes(bad)})
    assert info.value.input_index == 1
    # message computed for a different transaction (requester changed an output afterwards)
    other = _spend(out, ws, fee=2_000)
    with pytest.raises(SighashMismatch):
        review_spend(other, keys[1], m)
    with pytest.raises(SighashMismatch):
        review_spend(tx, keys[1], {0: m[0][:31]})
    # and the signer made no nonce for a refused request
    with pytest.raises(SighashMismatch):
        signers[1].round1(tx, {0: bytes(bad)})
    assert not signers[1]._pending


def test_cosigner_refuses_psbt_without_amount_or_script(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws)
    m = sighashes(tx)
    stripped = parse_psbt(psbt_base64(tx))
    stripped.inputs()[1]._witness_utxo = None      # the requester "forgot" input 1's amount+script
    stripped = parse_psbt(psbt_base64(stripped))
    with pytest.raises(MissingInputInfo) as info:
        review_spend(stripped, keys[2], {0: m[0]})    # even when only input 0 is to be signed
    assert info.value.input_index == 1
    with pytest.raises(MissingInputInfo):
        PsbtSigner(keys[2], lambda: b"").round1(stripped, {0: m[0]})


def test_cosigner_refuses_script_not_matching_participants(trio, module_wallets):
    ws, keys, signers, out = trio
    stranger = derive_participant_key(module_wallets.new()[0], "pw").pubkey
    other = MusigOutput.from_pubkeys([keys[0], keys[1], stranger])
    tx = _spend(out, ws)
    m = sighashes(tx)
    # swap input 0's spent script (witness utxo) for another MuSig2 output's script
    from electrum.transaction import TxOutput
    tx.inputs()[0]._witness_utxo = TxOutput(scriptpubkey=other.scriptpubkey, value=60_000)
    with pytest.raises(ParticipantMismatch) as info:
        review_spend(parse_psbt(psbt_base64(tx)), keys[1], m)
    assert info.value.input_index == 0


def test_cosigner_refuses_input_without_its_key_or_not_musig(trio, module_wallets):
    ws, keys, signers, out = trio
    stranger_w = module_wallets.new()[0]
    stranger = derive_participant_key(stranger_w, "pw").pubkey
    tx = _spend(out, ws)
    m = sighashes(tx)
    with pytest.raises(ParticipantMismatch):
        review_spend(tx, stranger, m)
    with pytest.raises(BridgeError, match="does not exist"):
        review_spend(tx, keys[0], {5: m[0]})
    with pytest.raises(BridgeError, match="names no input"):
        review_spend(tx, keys[0], {})
    # a request to sign an ordinary (non-MuSig2) input
    from musig2_plugin.wallet_bridge import psbt_fields
    plain = parse_psbt(psbt_base64(tx))
    for k in [k for k in plain.inputs()[1]._unknown]:
        del plain.inputs()[1]._unknown[k]
    with pytest.raises(NotAMusigInput):
        review_spend(plain, keys[0], {1: m[1]})


def test_bad_final_signature_refused(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws, values=(50_000,))
    for s in signers:
        s.round1(tx)
    for s in signers:
        s.round2(tx)
    sig = aggregate_all(tx)[0]
    tx.inputs()[0].tap_key_sig = None
    bad = bytearray(sig); bad[63] ^= 1
    with pytest.raises(InvalidFinalSignature):
        attach_signature(tx, 0, bytes(bad))
    with pytest.raises(InvalidFinalSignature):
        attach_signature(tx, 0, sig[:63])
    with pytest.raises(InvalidFinalSignature, match="no aggregate signature"):
        finalize(tx)


def test_tampered_partial_signature_names_culprit(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws, values=(50_000,))
    for s in signers:
        s.round1(tx)
    for s in signers:
        s.round2(tx)
    from musig2_plugin.wallet_bridge import psbt_fields
    txin = tx.inputs()[0]
    culprit = out.participants[1]
    full = bytes([psbt_fields.IN_MUSIG2_PARTIAL_SIG]) + culprit + out.output_key
    bad = bytearray(txin._unknown[full]); bad[5] ^= 1
    txin._unknown[full] = bytes(bad)
    with pytest.raises(InvalidFinalSignature, match=culprit.hex()):
        aggregate_all(tx)


def test_replaced_nonce_refused_in_round2(trio):
    ws, keys, signers, out = trio
    tx = _spend(out, ws, values=(50_000,))
    for s in signers:
        s.round1(tx)
    from musig2_plugin.wallet_bridge import psbt_fields
    txin = tx.inputs()[0]
    full = bytes([psbt_fields.IN_MUSIG2_PUB_NONCE]) + keys[0] + out.output_key
    _sec, fresh = crypto.nonce_gen(pubkey=keys[0])
    txin._unknown[full] = fresh
    with pytest.raises(SighashMismatch, match="replaced"):
        signers[0].round2(tx)
    with pytest.raises(BridgeError):          # and the nonce is gone: no retry with it
        signers[0].round2(tx)


def test_build_refusals(trio):
    ws, keys, signers, out = trio
    coin = MusigCoin(_txid(1), 0, 10_000, out)
    dest = ws[0].get_receiving_address()
    with pytest.raises(SpendBuildError, match="do not cover"):
        build_spend([coin], [(dest, 9_500)], fee_sats=600)
    with pytest.raises(SpendBuildError, match="change address"):
        build_spend([coin], [(dest, 5_000)], fee_sats=600)
    with pytest.raises(SpendBuildError, match="twice"):
        build_spend([coin, coin], [(dest, 5_000)], fee_sats=600)
    with pytest.raises(SpendBuildError, match="dust"):
        build_spend([coin], [(dest, 100)], fee_sats=600, change_address=dest)
    with pytest.raises(SpendBuildError, match="not an address"):
        build_spend([coin], [("bc1qnotanaddress", 5_000)], fee_sats=600)
    with pytest.raises(SpendBuildError, match="exactly one"):
        build_spend([coin], [(dest, 5_000)])
    with pytest.raises(SpendBuildError):
        build_spend([], [(dest, 5_000)], fee_sats=1)


def test_feerate_and_change(trio):
    ws, keys, signers, out = trio
    coins = [MusigCoin(_txid(1), 0, 100_000, out)]
    dest = ws[1].get_receiving_address()
    change = out.address()
    tx = build_spend(coins, [(dest, 30_000)], feerate_sat_vb=2.0, change_address=change,
                     change_musig=out)
    fee = tx.input_value() - tx.output_value()
    # a 1-input, 2-output key-path spend is ~154 vbytes
    assert 2 * 140 <= fee <= 2 * 170
    assert {o.address for o in tx.outputs()} == {dest, change}
    review = review_spend(tx, keys[0], sighashes(tx))
    assert review.fee_sats == fee
    assert [o.musig == out for o in review.outputs if o.address == change] == [True]


def test_feerate_with_dust_leftover_goes_to_fee_explicitly(trio):
    ws, keys, signers, out = trio
    coins = [MusigCoin(_txid(2), 0, 100_000, out)]
    dest = ws[1].get_receiving_address()
    tx = build_spend(coins, [(dest, 99_500)], feerate_sat_vb=2.0, change_address=out.address())
    assert [o.address for o in tx.outputs()] == [dest]           # no dust change output
    assert tx.input_value() - tx.output_value() == 500
    with pytest.raises(SpendBuildError, match="do not cover"):
        build_spend(coins, [(dest, 99_900)], feerate_sat_vb=2.0, change_address=out.address())
