"""BIP-340 helpers on our context, input validation, and the no-Electrum rule."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from coincurve import PrivateKey, PublicKeyXOnly

from musig2_plugin.crypto import (InvalidMessageLength, InvalidPublicKey, InvalidSecretKey,
                                  nonce_gen, parse_xonly, plain_pubkey, schnorr_sign,
                                  schnorr_verify, tagged_hash, xonly_pubkey)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CRYPTO_DIR = Path(__file__).resolve().parents[2] / "musig2_plugin" / "crypto"


def test_schnorr_roundtrip_and_cross_check_with_coincurve():
    sk, msg = os.urandom(32), os.urandom(32)
    sig = schnorr_sign(sk, msg)
    assert schnorr_verify(xonly_pubkey(sk), msg, sig)
    assert PublicKeyXOnly(xonly_pubkey(sk)).verify(sig, msg)  # independent verifier
    assert plain_pubkey(sk) == PrivateKey(sk).public_key.format()
    assert not schnorr_verify(xonly_pubkey(sk), bytes([msg[0] ^ 1]) + msg[1:], sig)
    # BIP-340 determinism given aux_rand
    assert schnorr_sign(sk, msg, b"\x00" * 32) == schnorr_sign(sk, msg, b"\x00" * 32)


@pytest.mark.parametrize("key,msg,sig", [
    (b"\x00" * 32, b"\x00" * 32, b"\x00" * 64),      # x = 0 is not on the curve
    (b"\x01" * 31, b"\x00" * 32, b"\x00" * 64),
    (None, b"\x00" * 31, b"\x00" * 64),
    (None, b"\x00" * 32, b"\x00" * 63),
    ("str", "str", "str"),
])
def test_schnorr_verify_malformed_is_false(key, msg, sig):
    if key is None:
        key = xonly_pubkey(b"\x01" * 32)
    assert schnorr_verify(key, msg, sig) is False


def test_secret_key_and_message_validation():
    for bad in (b"\x00" * 32, N.to_bytes(32, "big"), b"\x01" * 31, "x" * 32):
        with pytest.raises(InvalidSecretKey):
            plain_pubkey(bad)
        with pytest.raises(InvalidSecretKey):
            nonce_gen(pubkey=plain_pubkey(b"\x01" * 32), seckey=bad)
    with pytest.raises(InvalidMessageLength):
        schnorr_sign(b"\x01" * 32, b"\x00" * 33)


def test_parse_xonly_names_index():
    good = xonly_pubkey(b"\x05" * 32)
    assert parse_xonly(good, 3) == good
    with pytest.raises(InvalidPublicKey) as info:
        parse_xonly(b"\x00" * 32, 4)
    assert info.value.index == 4


def test_tagged_hash_matches_bip340_definition():
    import hashlib
    t = hashlib.sha256(b"TapTweak").digest()
    assert tagged_hash("TapTweak", b"abc") == hashlib.sha256(t + t + b"abc").digest()


def test_crypto_package_never_imports_electrum():
    """Static check of every module of the crypto layer (the layer must run without it)."""
    for path in CRYPTO_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level > 1:  # reaching outside crypto/: only the foundation constants and errors
                    assert node.module in ("foundation.constants", "foundation.errors"), f"{path.name} imports ..{node.module}"
            assert not any(n.split(".")[0] == "electrum" for n in names), path.name
