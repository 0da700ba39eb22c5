"""MuSig2 outputs: BIP-390 descriptor text, checksum, taproot output key and address."""
from __future__ import annotations

import pytest
from electrum import constants as ec
from electrum import segwit_addr
from electrum.descriptor import DescriptorChecksum, parse_descriptor

from musig2_plugin import crypto
from musig2_plugin.wallet_bridge import (DescriptorError, InvalidParticipants, MusigOutput,
                                         add_checksum, derive_participant_key, descriptor_checksum,
                                         parse_musig_descriptor)

# BIP-390 test vector: tr(musig(K1,K2,K3)) with these keys (written unsorted there)
BIP390_KEYS = ["02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9",
               "03dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659",
               "023590a94e768f8e1815c2f24b4d80a8e3149316c3518ce7b7ad338368d038ca66"]
BIP390_SCRIPT = "512079e6c3e628c9bfbce91de6b7fb28e2aec7713d377cf260ab599dcbc40e542312"
BIP390_RAWTR_SCRIPT = "5120789d937bade6673538f3e28d8368dda4d0512f94da44cf477a505716d26a1575"


def test_bip390_vector_end_to_end():
    out = MusigOutput.from_pubkeys(bytes.fromhex(k) for k in BIP390_KEYS)
    assert out.scriptpubkey.hex() == BIP390_SCRIPT
    # and BIP-390's rawtr(musig(same keys)) vector is the untweaked aggregate: our internal key
    assert out.internal_key[1:].hex() == BIP390_RAWTR_SCRIPT[4:]
    # the descriptor lists the keys in KeySort order, whatever order they came in
    assert out.descriptor.startswith("tr(musig(023590a9")
    assert [k.hex() for k in out.participants] == sorted(BIP390_KEYS, key=bytes.fromhex)
    # the vector's own (unsorted) text gives the same output once parsed by us
    unsorted = f"tr(musig({','.join(BIP390_KEYS)}))"
    assert MusigOutput.from_descriptor(unsorted) == out
    assert MusigOutput.from_descriptor(add_checksum(unsorted)) == out
    # address: bech32m of x(Q), decoded back with Electrum's own decoder
    for net in (ec.BitcoinMainnet, ec.BitcoinTestnet, ec.BitcoinRegtest):
        addr = out.address(net=net)
        assert segwit_addr.decode_segwit_address(net.SEGWIT_HRP, addr) == (1, list(out.scriptpubkey[2:]))
    assert out.address(net=ec.BitcoinMainnet) == \
        "bc1p08nv8e3gexlme6gau6mlk28z4mrhz0fh0nexp26enh9ugrj5yvfq5ttgh9"


def test_internal_key_agrees_with_electrum_tr_descriptor():
    """Electrum cannot parse musig(), but tr(<x(P)>) of our internal key must expand to our script."""
    out = MusigOutput.from_pubkeys(bytes.fromhex(k) for k in BIP390_KEYS)
    desc = parse_descriptor(f"tr({out.internal_key[1:].hex()})")
    assert desc.expand().output_script == out.scriptpubkey
    assert out.keyagg().xonly() == out.xonly_output_key
    assert out.keyagg().internal_xonly() == out.internal_key[1:]


def test_checksum_known_vectors_and_electrum_agreement():
    # BIP-380's example
    assert descriptor_checksum("raw(deadbeef)") == "89f8spxm"
    for text in ["raw(deadbeef)", f"tr(musig({','.join(BIP390_KEYS)}))",
                 "wpkh(02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9)",
                 "sh(multi(1,[deadbeef/0h/1']xpub/0/*,03aa))"]:
        assert descriptor_checksum(text) == DescriptorChecksum(text)
    with pytest.raises(DescriptorError):
        descriptor_checksum("tr(é)")


def test_descriptor_parse_refusals():
    good = MusigOutput.from_pubkeys(bytes.fromhex(k) for k in BIP390_KEYS).descriptor
    body, _, cs = good.partition("#")
    bad_cs = body + "#" + ("q" if cs[0] != "q" else "p") + cs[1:]
    for text in [bad_cs,
                 body.replace("tr(", "rawtr("),
                 f"tr(musig({BIP390_KEYS[0]},{BIP390_KEYS[1]})/0/*)",
                 f"tr(musig({BIP390_KEYS[0]},{BIP390_KEYS[1]}),pk({BIP390_KEYS[2]}))",
                 f"tr(musig({BIP390_KEYS[0]},{BIP390_KEYS[1][:-2]}))",
                 f"tr(musig({BIP390_KEYS[0]},04{BIP390_KEYS[1][2:]}))",
                 "tr(musig(xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL))",
                 "", 12345]:
        with pytest.raises(DescriptorError):
            parse_musig_descriptor(text)


def test_participant_refusals():
    k = [bytes.fromhex(x) for x in BIP390_KEYS]
    with pytest.raises(InvalidParticipants, match="needs"):
        MusigOutput.from_pubkeys(k[:1])
    with pytest.raises(InvalidParticipants, match="twice"):
        MusigOutput.from_pubkeys([k[0], k[1], k[0]])
    with pytest.raises(InvalidParticipants, match="compressed"):
        MusigOutput.from_pubkeys([k[0], b"\x04" + k[1][1:]])
    not_on_curve = b"\x02" + b"\x00" * 31 + b"\x05"   # x = 5 is not on secp256k1
    with pytest.raises(InvalidParticipants, match="curve"):
        MusigOutput.from_pubkeys([k[0], not_on_curve])
    with pytest.raises(InvalidParticipants):
        MusigOutput.from_pubkeys([k[0]] * 16)


def test_storage_round_trip_and_tamper():
    out = MusigOutput.from_pubkeys(bytes.fromhex(x) for x in BIP390_KEYS)
    d = out.to_dict()
    assert MusigOutput.from_dict(d) == out
    d2 = dict(d, output_key=out.internal_key.hex())
    with pytest.raises(Exception):
        MusigOutput.from_dict(d2)
    with pytest.raises(DescriptorError):
        MusigOutput.from_dict({"participants": d["participants"]})


def test_output_from_real_wallet_keys_order_independent(wallets):
    keys = []
    for _ in range(3):
        w, _seed = wallets.new()
        keys.append(derive_participant_key(w, "pw").pubkey)
    a = MusigOutput.from_pubkeys(keys)
    b = MusigOutput.from_pubkeys(reversed(keys))
    assert a == b and a.descriptor == b.descriptor
    assert list(a.participants) == crypto.key_sort(keys)
    assert a.address(net=ec.BitcoinRegtest).startswith("bcrt1p")


def test_signer_index_of_is_the_keysorted_position_or_none():
    keys = [bytes.fromhex(k) for k in BIP390_KEYS]
    out = MusigOutput.from_pubkeys(reversed(keys))
    assert [out.signer_index_of(k) for k in crypto.key_sort(keys)] == list(range(len(keys)))
    assert out.signer_index_of(b"\x02" + bytes(32)) is None
    assert not hasattr(out, "index_of")
