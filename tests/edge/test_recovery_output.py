"""Recovery outputs tr(musig(K1..Kn), LEAF): policy, descriptor, output key, PSBT fields, spends.

The output key and address are recomputed here from BIP-341 directly (pure-Python curve
arithmetic, hashlib, hand-assembled leaf scripts), not through the plugin's code path; the
script-path sighash likewise from BIP-341/342's definition. The node's verdict on real
coins is in tests/edge_chain/test_recovery_on_chain.py.
"""
from __future__ import annotations

import hashlib

import pytest
from electrum import segwit_addr
from electrum import constants as ec
from electrum.descriptor import DescriptorChecksum

from musig2_plugin import crypto
from musig2_plugin.wallet_bridge import (DescriptorError, InvalidFinalSignature, MusigCoin,
                                         MusigOutput, PsbtFieldError, PsbtSigner, RecoveryNotMature,
                                         RecoveryPolicy, RecoveryPolicyError, aggregate_all,
                                         build_recovery_spend, check_mature, finalize,
                                         finalize_recovery, musig_inputs, parse_psbt, psbt_base64,
                                         recovery_height, recovery_status, review_recovery,
                                         review_spend, script_path_sighash, sighashes,
                                         sign_recovery, build_spend)
from musig2_plugin.wallet_bridge import psbt_taptree as pt

SECRETS = [hashlib.sha256(b"recovery %d" % i).digest() for i in range(3)]
KEYS = [crypto.plain_pubkey(s) for s in SECRETS]
SORTED = crypto.key_sort(KEYS)
SECRET_OF = {crypto.plain_pubkey(s): s for s in SECRETS}

# --- independent BIP-340/341 arithmetic (no plugin code) ----------------------------------
_P = 2**256 - 2**32 - 977
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
      0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % _P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], _P - 2, _P) % _P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], _P - 2, _P) % _P
    x = (lam * lam - a[0] - b[0]) % _P
    return x, (lam * (a[0] - x) - a[1]) % _P


def _mul(k, pt_):
    r = None
    while k:
        if k & 1:
            r = _add(r, pt_)
        pt_ = _add(pt_, pt_)
        k >>= 1
    return r


def _lift_x(x):
    y = pow((x ** 3 + 7) % _P, (_P + 1) // 4, _P)
    return x, (y if y % 2 == 0 else _P - y)


def _th(tag: str, data: bytes) -> bytes:
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def _bip341_output_key(internal_x: bytes, leaf_script: bytes) -> tuple[bytes, int]:
    leaf = _th("TapLeaf", b"\xc0" + bytes([len(leaf_script)]) + leaf_script)
    t = int.from_bytes(_th("TapTweak", internal_x + leaf), "big")
    q = _add(_lift_x(int.from_bytes(internal_x, "big")), _mul(t, _G))
    return q[0].to_bytes(32, "big"), q[1] & 1


def _num(n: int) -> bytes:
    if n <= 16:
        return bytes([0x50 + n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "little")
    b += b"\x00" if b[-1] & 0x80 else b""
    return bytes([len(b)]) + b


# --- policy and descriptor ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["funder", "2-of-3"])
@pytest.mark.parametrize("blocks", [1, 10, 16, 17, 128, 144, 4032, 65535])
def test_output_key_and_address_match_bip341_computed_independently(electrum_loop, kind, blocks):
    if kind == "funder":
        policy = RecoveryPolicy.funder_alone(KEYS[0], SORTED, blocks)
        script = b"\x20" + KEYS[0][1:] + b"\xad" + _num(blocks) + b"\xb2"
    else:
        policy = RecoveryPolicy.k_of_n(2, SORTED, blocks)
        script = (b"\x20" + SORTED[0][1:] + b"\xac" + b"\x20" + SORTED[1][1:] + b"\xba"
                  + b"\x20" + SORTED[2][1:] + b"\xba" + b"\x52\x9d" + _num(blocks) + b"\xb2")
    out = MusigOutput.from_pubkeys(KEYS, recovery=policy)
    assert policy.script == script
    # P comes from BIP-327 key aggregation; the BIP-341 part is computed here alone
    qx, parity = _bip341_output_key(out.internal_key[1:], script)
    assert out.xonly_output_key == qx and out.output_key[0] == 2 + parity
    assert out.scriptpubkey == b"\x51\x20" + qx
    assert out.address(net=ec.BitcoinRegtest) == segwit_addr.encode_segwit_address("bcrt", 1, qx)
    assert out.control_block() == bytes([0xC0 | parity]) + out.internal_key[1:]
    # and differs from the key-path-only output of the same keys
    assert out.scriptpubkey != MusigOutput.from_pubkeys(KEYS).scriptpubkey


def test_descriptor_round_trip_and_checksum(electrum_loop):
    for policy in (RecoveryPolicy.funder_alone(KEYS[1], SORTED, 10),
                   RecoveryPolicy.k_of_n(2, SORTED, 144)):
        out = MusigOutput.from_pubkeys(KEYS, recovery=policy)
        text = out.descriptor
        body, _, checksum = text.partition("#")
        assert checksum == DescriptorChecksum(body)
        keys = ",".join(k.hex() for k in SORTED)
        assert body == f"tr(musig({keys}),{policy.miniscript()})"
        assert MusigOutput.from_descriptor(text) == out
        assert MusigOutput.from_descriptor(body) == out
    # plain tr(musig(...)) keeps working
    plain = MusigOutput.from_pubkeys(KEYS)
    assert MusigOutput.from_descriptor(plain.descriptor) == plain and plain.recovery is None


@pytest.mark.parametrize("tree,message", [
    ("and_v(v:pk({k0}),older(0))", "1 to 65535"),
    ("and_v(v:pk({k0}),older(65536))", "1 to 65535"),
    ("and_v(v:pk({other}),older(10))", "must be a participant"),
    ("and_v(v:multi_a(3,{k0},{k1},{k2}),older(10))", "1 <= k < n"),
    ("and_v(v:multi_a(0,{k0},{k1},{k2}),older(10))", "1 <= k < n"),
    ("and_v(v:multi_a(2,{k1},{k0},{k2}),older(10))", "same order"),
    ("and_v(v:multi_a(1,{k0},{k1}),older(10))", "same order"),
    ("and_v(v:pk({k0}),after(10))", "only the recovery leaves"),
    ("pk({k0})", "only the recovery leaves"),
    ("{{and_v(v:pk({k0}),older(10)),pk({k1})}}", "only tr"),
])
def test_descriptor_trees_we_do_not_write_are_refused(electrum_loop, tree, message):
    other = crypto.plain_pubkey(hashlib.sha256(b"stranger").digest())
    keys = ",".join(k.hex() for k in SORTED)
    text = f"tr(musig({keys}),{tree.format(k0=SORTED[0].hex(), k1=SORTED[1].hex(), k2=SORTED[2].hex(), other=other.hex())})"
    with pytest.raises(DescriptorError, match=message):
        MusigOutput.from_descriptor(text)


def test_unsorted_musig_keys_with_a_tree_and_bad_checksum_are_refused(electrum_loop):
    out = MusigOutput.from_pubkeys(KEYS, recovery=RecoveryPolicy.funder_alone(KEYS[0], SORTED, 10))
    body = out.descriptor.split("#")[0]
    swapped = body.replace(SORTED[0].hex() + "," + SORTED[1].hex(),
                           SORTED[1].hex() + "," + SORTED[0].hex(), 1)
    with pytest.raises(DescriptorError, match="KeySort"):
        MusigOutput.from_descriptor(swapped)
    with pytest.raises(DescriptorError, match="checksum"):
        MusigOutput.from_descriptor(body + "#qqqqqqqq")


def test_policy_specs(electrum_loop):
    assert RecoveryPolicy.from_spec("funder:10", SORTED, me=KEYS[2]) == \
        RecoveryPolicy.funder_alone(KEYS[2], SORTED, 10)
    assert RecoveryPolicy.from_spec(f"funder:{KEYS[1].hex()}:20", SORTED) == \
        RecoveryPolicy.funder_alone(KEYS[1], SORTED, 20)
    assert RecoveryPolicy.from_spec("2-of-3", SORTED).blocks == 4032
    assert RecoveryPolicy.from_spec("2-of-3:144", SORTED) == RecoveryPolicy.k_of_n(2, SORTED, 144)
    for bad in ("funder", "2-of-4:10", "3-of-3:10", "funder:abc", "funder:10:20", "", "x" * 300,
                "2-of-3:0", "2-of-3:70000", "1-of-3:-5"):
        with pytest.raises(RecoveryPolicyError):
            RecoveryPolicy.from_spec(bad, SORTED)


def test_leaf_scripts_decompile_only_to_exact_policies(electrum_loop):
    for p in (RecoveryPolicy.funder_alone(KEYS[0], SORTED, 85),
              RecoveryPolicy.funder_alone(KEYS[0], SORTED, 513),
              RecoveryPolicy.k_of_n(1, SORTED, 16), RecoveryPolicy.k_of_n(2, SORTED, 65535)):
        assert RecoveryPolicy.from_script(p.script, SORTED) == p
    funder = RecoveryPolicy.funder_alone(KEYS[0], SORTED, 10).script
    bad = [funder[:-2] + b"\x01\x0a\xb2",          # non-minimal push of 10
           funder[:-1] + b"\xb1",                   # CLTV instead of CSV
           funder.replace(b"\xad", b"\xac"),        # CHECKSIG without VERIFY
           b"\x20" + b"\x11" * 32 + funder[33:],    # not a participant's key
           funder + b"\x75", b"", b"\xb2"]
    for script in bad:
        with pytest.raises(RecoveryPolicyError):
            RecoveryPolicy.from_script(script, SORTED)


# --- PSBTs -------------------------------------------------------------------------------
def _coin(out, n=0, value=100_000):
    return MusigCoin(hashlib.sha256(b"rec coin %d" % n).hexdigest(), n, value, out)


@pytest.fixture
def funder_out(electrum_loop):
    return MusigOutput.from_pubkeys(KEYS, recovery=RecoveryPolicy.funder_alone(KEYS[0], SORTED, 10))


def test_key_path_spend_of_a_recovery_output_signs_under_the_merkle_root_tweak(funder_out):
    out = funder_out
    tx = build_spend([_coin(out, 0), _coin(out, 1)], [(out.address(), 199_000)], fee_sats=1_000)
    t = parse_psbt(psbt_base64(tx))
    got = musig_inputs(t)
    assert got[0] == out and got[0].recovery == out.recovery
    assert t.inputs()[0].tap_merkle_root == out.recovery.leaf_hash
    signers = [PsbtSigner(k, (lambda k=k: SECRET_OF[k])) for k in KEYS]
    psbt = psbt_base64(t)
    for s in signers:
        t = parse_psbt(psbt)
        review = s.round1(t)
        assert "funder" in review.to_json()["inputs"][0]["recovery"]
        psbt = psbt_base64(t)
    for s in signers:
        t = parse_psbt(psbt)
        s.round2(t)
        psbt = psbt_base64(t)
    t = parse_psbt(psbt)
    msgs = sighashes(t)
    for i, sig in aggregate_all(t).items():
        assert crypto.schnorr_verify(out.xonly_output_key, msgs[i], sig)
        # not valid under the key-path-only output key of the same participants
        assert not crypto.schnorr_verify(MusigOutput.from_pubkeys(KEYS).xonly_output_key,
                                         msgs[i], sig)
    assert finalize(t).is_complete()


def _tampered(out, mutate):
    tx = build_spend([_coin(out)], [(out.address(), 99_000)], fee_sats=1_000)
    mutate(tx.inputs()[0])
    return parse_psbt(psbt_base64(tx))


def test_tree_fields_are_validated_on_read(funder_out):
    out = funder_out
    leaf_key = bytes([pt.IN_TAP_LEAF_SCRIPT]) + out.control_block()
    other = RecoveryPolicy.funder_alone(KEYS[0], SORTED, 11)
    cases = [
        (lambda t: setattr(t, "tap_merkle_root", b"\x01" * 32), "merkle root is not the leaf"),
        (lambda t: t._unknown.pop(leaf_key), "without its leaf script"),
        (lambda t: t._unknown.__setitem__(leaf_key, other.script + b"\xc0"), "merkle root"),
        (lambda t: t._unknown.__setitem__(leaf_key, out.recovery.script + b"\xc2"), "version"),
        (lambda t: (t._unknown.pop(leaf_key),
                    t._unknown.__setitem__(leaf_key[:1] + bytes([leaf_key[1] ^ 1]) + leaf_key[2:],
                                           out.recovery.script + b"\xc0")), "control block"),
        (lambda t: t._unknown.__setitem__(leaf_key + b"\x00" * 32, b"\x51\xc0"), "more than one"),
        (lambda t: t._unknown.__setitem__(bytes([pt.IN_TAP_BIP32_DERIVATION]) + b"\x02" * 32,
                                          b"\x01" + b"\x00" * 10), "derivation"),
        (lambda t: t._unknown.__setitem__(bytes([pt.IN_TAP_SCRIPT_SIG]) + b"\x02" * 64,
                                          b"\x00" * 65), "64 bytes"),
    ]
    for mutate, message in cases:
        with pytest.raises(PsbtFieldError, match=message):
            musig_inputs(_tampered(out, mutate))
    # a tree-less input with the merkle root of another tree: the script check refuses it
    plain = MusigOutput.from_pubkeys(KEYS)
    tx = build_spend([_coin(plain)], [(plain.address(), 99_000)], fee_sats=1_000)
    tx.inputs()[0].tap_merkle_root = out.recovery.leaf_hash
    with pytest.raises(PsbtFieldError, match="without its leaf script"):
        musig_inputs(parse_psbt(psbt_base64(tx)))


# --- recovery spends (script path) ---------------------------------------------------------
def _independent_script_path_sighash(tx, index, leaf_hash):
    """BIP-341 SigMsg + BIP-342 extension, written out from the BIPs (SIGHASH_DEFAULT)."""
    sha = lambda b: hashlib.sha256(b).digest()  # noqa: E731
    ins = tx.inputs()
    prevouts = b"".join(bytes.fromhex(i.prevout.txid.hex())[::-1] + i.prevout.out_idx.to_bytes(4, "little")
                        for i in ins)
    amounts = b"".join(i.value_sats().to_bytes(8, "little") for i in ins)
    spks = b"".join(bytes([len(i.scriptpubkey)]) + i.scriptpubkey for i in ins)
    seqs = b"".join(i.nsequence.to_bytes(4, "little") for i in ins)
    outs = b"".join(o.value.to_bytes(8, "little") + bytes([len(o.scriptpubkey)]) + o.scriptpubkey
                    for o in tx.outputs())
    msg = (b"\x00" + b"\x00" + tx.version.to_bytes(4, "little") + tx.locktime.to_bytes(4, "little")
           + sha(prevouts) + sha(amounts) + sha(spks) + sha(seqs) + sha(outs)
           + b"\x02" + index.to_bytes(4, "little") + leaf_hash + b"\x00" + b"\xff" * 4)
    return _th("TapSighash", msg)


def test_funder_recovery_spend_builds_signs_and_finalizes(funder_out):
    out = funder_out
    dest = MusigOutput.from_pubkeys(KEYS[:2]).address()
    tx = build_recovery_spend([_coin(out, 0), _coin(out, 1)], dest, feerate_sat_vb=2)
    assert [i.nsequence for i in tx.inputs()] == [10, 10] and tx.version == 2
    t = parse_psbt(psbt_base64(tx))
    for i in (0, 1):
        assert script_path_sighash(t, i, out.recovery.leaf_hash) == \
            _independent_script_path_sighash(t, i, out.recovery.leaf_hash)
    with pytest.raises(InvalidFinalSignature, match="0 of the 1"):
        finalize_recovery(parse_psbt(psbt_base64(t)))
    with pytest.raises(Exception, match="no recovery input of this transaction takes our key"):
        sign_recovery(t, SECRETS[1])      # not the funder
    assert sign_recovery(t, SECRETS[0]) == [0, 1]
    t = parse_psbt(psbt_base64(t))
    assert recovery_status(t)[0].signed_by == (KEYS[0],)
    final = finalize_recovery(t)
    wit = final.inputs()[0].witness_elements()
    assert [len(x) for x in wit] == [64, len(out.recovery.script), 33]
    assert wit[1] == out.recovery.script and wit[2] == out.control_block()
    # the fee paid matches the feerate for the real size (within rounding of the estimate)
    fee = 200_000 - final.outputs()[0].value
    assert abs(fee - 2 * final.estimated_size()) <= 4


def test_bad_tapscript_signature_is_refused(funder_out):
    out = funder_out
    tx = build_recovery_spend([_coin(out)], out.address(), fee_sats=500)
    pt.add_script_sig(tx.inputs()[0], KEYS[0][1:], out.recovery.leaf_hash, b"\x01" * 64)
    with pytest.raises(InvalidFinalSignature, match="does not verify"):
        finalize_recovery(parse_psbt(psbt_base64(tx)))


def test_two_of_three_recovery_signatures_travel_in_the_psbt(electrum_loop):
    out = MusigOutput.from_pubkeys(KEYS, recovery=RecoveryPolicy.k_of_n(2, SORTED, 10))
    tx = build_recovery_spend([_coin(out)], out.address(), fee_sats=700)
    psbt = psbt_base64(tx)
    review = review_recovery(parse_psbt(psbt), SORTED[2])
    assert review["fee_sats"] == 700 and "2 of the 3" in review["inputs"][0]["recovery"]
    for k in (SORTED[2], SORTED[0]):          # two signers, passing the file on
        t = parse_psbt(psbt)
        sign_recovery(t, SECRET_OF[k])
        psbt = psbt_base64(t)
    final = finalize_recovery(parse_psbt(psbt))
    wit = final.inputs()[0].witness_elements()
    # reverse key order: K3's signature, K2 empty, K1's signature, script, control block
    assert [len(x) for x in wit] == [64, 0, 64, len(out.recovery.script), 33]
    # a tampered nSequence no longer matches the leaf
    t = parse_psbt(psbt)
    t.inputs()[0].nsequence = 9
    with pytest.raises(Exception, match="relative timelock"):
        review_recovery(parse_psbt(psbt_base64(t)), SORTED[0])


def test_maturity_is_checked_with_the_height_it_opens(funder_out):
    out = funder_out
    c = _coin(out)
    assert recovery_height(200, out) == 210
    with pytest.raises(RecoveryNotMature, match="opens at block 210; the chain is at 205"):
        check_mature([c], {c.outpoint: 200}, 205)
    with pytest.raises(RecoveryNotMature, match="not confirmed"):
        check_mature([c], {c.outpoint: 0}, 205)
    check_mature([c], {c.outpoint: 200}, 209)     # the next block (210) may contain it


def test_change_to_a_recovery_output_carries_its_tree_and_is_reviewed(funder_out):
    out = funder_out
    other = MusigOutput.from_pubkeys(KEYS[:2]).address()
    tx = build_spend([_coin(out)], [(other, 40_000)], fee_sats=1_000,
                     change_address=out.address(), change_musig=out)
    t = parse_psbt(psbt_base64(tx))
    review = review_spend(t, KEYS[0], sighashes(t))
    change = [o for o in review.outputs if o.address == out.address()][0]
    assert change.musig == out and change.musig.recovery == out.recovery
    # a tree that does not produce the script, or a malformed one, is refused naming the output
    idx = [i for i, o in enumerate(tx.outputs()) if o.address == out.address()][0]
    wrong = RecoveryPolicy.funder_alone(KEYS[0], SORTED, 11).script
    for value, message in ((b"\x00\xc0" + bytes([len(wrong)]) + wrong, "do not produce"),
                           (b"\x01\xc0\x01\x51", "one depth-0"),
                           (b"\x00\xc0\x05\x51", "exactly one leaf")):
        bad = parse_psbt(psbt_base64(tx))
        bad.outputs()[idx]._unknown[bytes([pt.OUT_TAP_TREE])] = value
        bad = parse_psbt(psbt_base64(bad))
        with pytest.raises(PsbtFieldError, match=f"^output {idx}: .*{message}"):
            review_spend(bad, KEYS[0], sighashes(bad))


def test_import_checks_the_tree_against_the_announced_policy(electrum_loop):
    from musig2_plugin.wallet_bridge import (InvalidParticipants, RecoveryPolicyMismatch,
                                             create_recovery_output, import_output)
    made = create_recovery_output(KEYS[0], KEYS[1:], "funder:144")
    assert made.recovery == RecoveryPolicy.funder_alone(KEYS[0], SORTED, 144)
    text = made.descriptor
    assert import_output(text, KEYS[1], f"funder:{KEYS[0].hex()}:144") == made
    assert import_output(text, KEYS[2], "funder:144", announced_funder=KEYS[0]) == made
    for announced in (f"funder:{KEYS[0].hex()}:145", f"funder:{KEYS[1].hex()}:144",
                      "2-of-3:144", None):
        with pytest.raises(RecoveryPolicyMismatch):
            import_output(text, KEYS[1], announced)
    plain = create_recovery_output(KEYS[0], KEYS[1:], None)
    with pytest.raises(RecoveryPolicyMismatch, match="no recovery leaf"):
        import_output(plain.descriptor, KEYS[1], "2-of-3:144")
    assert import_output(plain.descriptor, KEYS[1], None) == plain
    stranger = crypto.plain_pubkey(hashlib.sha256(b"stranger").digest())
    with pytest.raises(InvalidParticipants):
        import_output(text, stranger, f"funder:{KEYS[0].hex()}:144")


def test_own_key_origin_is_written_for_the_leaf_and_read_back(funder_out):
    out = funder_out
    tx = build_recovery_spend([_coin(out, 0), _coin(out, 1)], out.address(), fee_sats=900)
    pt.add_own_derivation(tx, KEYS[0], b"\xde\xad\xbe\xef", (0x80000000, 0x80000147, 0x80000000))
    pt.add_own_derivation(tx, KEYS[1], b"\x01\x02\x03\x04", (1,))   # not a leaf key: nothing
    t = parse_psbt(psbt_base64(tx))
    for txin in t.inputs():
        got = txin._unknown[bytes([pt.IN_TAP_BIP32_DERIVATION]) + KEYS[0][1:]]
        assert got == (b"\x01" + out.recovery.leaf_hash + b"\xde\xad\xbe\xef"
                       + b"\x00\x00\x00\x80" + b"\x47\x01\x00\x80" + b"\x00\x00\x00\x80")
        assert bytes([pt.IN_TAP_BIP32_DERIVATION]) + KEYS[1][1:] not in txin._unknown
    assert musig_inputs(t)[0] == out           # and the whole input still reads back checked
