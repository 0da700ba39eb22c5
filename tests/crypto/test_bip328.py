"""BIP-328 vectors and derivation checked against an independent BIP-32 computation."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from coincurve import PublicKey

from musig2_plugin.foundation.constants import BIP328_CHAINCODE
from musig2_plugin.crypto import (CryptoError, InvalidTweak, KeyAggContext, SigningSession,
                                  bip328_derive, bip328_xpub, nonce_gen, plain_pubkey,
                                  schnorr_verify)
from musig2_plugin.crypto.bip328 import Bip328Node

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors/bip328/vectors.json").read_text())
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58decode_check(text: str) -> bytes:
    num = 0
    for ch in text:
        num = num * 58 + B58.index(ch)
    raw = num.to_bytes(82, "big")
    payload, check = raw[:-4], raw[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check
    return payload


@pytest.mark.parametrize("case", VECTORS, ids=[f"vector{i}" for i in range(len(VECTORS))])
def test_bip328_vector(case):
    keys = [bytes.fromhex(k) for k in case["keys"]]
    keyagg = KeyAggContext.from_pubkeys(keys)  # listed order, no sorting (BIP-328 vectors)
    assert keyagg.aggregate_pubkey().hex() == case["aggregate_pubkey"].lower()
    assert bip328_xpub(keyagg) == case["xpub"]
    assert bip328_xpub(keys) == case["xpub"]
    payload = _b58decode_check(case["xpub"])
    assert payload[13:45] == BIP328_CHAINCODE and payload[4] == 0


def _ckd_pub(pubkey: bytes, chaincode: bytes, index: int) -> tuple[bytes, bytes]:
    """Textbook BIP-32 CKDpub with coincurve's default context (independent path)."""
    digest = hmac.new(chaincode, pubkey + index.to_bytes(4, "big"), hashlib.sha512).digest()
    return PublicKey(pubkey).add(digest[:32]).format(), digest[32:]


def test_derivation_matches_independent_bip32_and_signs():
    sks = [os.urandom(32) for _ in range(3)]
    pks = [plain_pubkey(sk) for sk in sks]
    root = KeyAggContext.from_pubkeys(pks)
    path = [0, 7, 2**31 - 1]
    pub, cc = root.aggregate_pubkey(), BIP328_CHAINCODE
    for index in path:
        pub, cc = _ckd_pub(pub, cc, index)
    child = bip328_derive(root, path)
    assert child.aggregate_pubkey() == pub
    node = Bip328Node.root(root).derive(path)
    assert node.chaincode == cc and node.depth == 3 and node.child_number == 2**31 - 1
    tpub = bip328_xpub(root, path, testnet=True)
    assert tpub.startswith("tpub") and _b58decode_check(tpub)[45:] == pub
    # The derived (and taproot-tweaked) key is signable by the same participants.
    output = child.with_taproot_tweak()
    msg = os.urandom(32)
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=output, msg=msg) for pk, sk in zip(pks, sks)]
    session = SigningSession.from_pubnonces(output, [pn for _, pn in nonces], msg)
    sig = session.aggregate([session.partial_sign(sn, sk) for (sn, _), sk in zip(nonces, sks)])
    assert schnorr_verify(output.xonly(), msg, sig)


def test_hardened_and_tweaked_roots_are_refused():
    pks = [plain_pubkey(os.urandom(32)) for _ in range(2)]
    root = KeyAggContext.from_pubkeys(pks)
    with pytest.raises(CryptoError):
        bip328_derive(root, [2**31])
    with pytest.raises(CryptoError):
        bip328_derive(root, [-1])
    with pytest.raises(InvalidTweak):
        bip328_derive(root.with_taproot_tweak(), [0])
