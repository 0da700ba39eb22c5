"""Test-only, from-the-text BIP-327 NonceGen (hashlib + coincurve), written here.

WHY: libsecp256k1's nonce_gen takes the aggregate key as a key-aggregation
cache and messages of 32 bytes only, so three of the four nonce_gen vectors
cannot be fed to it.  This reference is first shown to agree with libsecp on
every input libsecp accepts (fixed vector and random inputs), and then checked
against the vectors libsecp cannot take.  It is never used outside tests.
"""
from __future__ import annotations

from coincurve import PrivateKey

from musig2_plugin.crypto import tagged_hash

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def nonce_gen_ref(rand_: bytes, sk: bytes | None, pk: bytes, aggpk: bytes | None,
                  msg: bytes | None, extra_in: bytes | None) -> tuple[bytes, bytes]:
    """Return (secnonce 97 bytes, pubnonce 66 bytes) per BIP-327 NonceGen."""
    if sk is not None:
        mask = tagged_hash("MuSig/aux", rand_)
        rand = bytes(a ^ b for a, b in zip(sk, mask))
    else:
        rand = rand_
    aggpk = aggpk or b""
    msg_prefixed = b"\x00" if msg is None else b"\x01" + len(msg).to_bytes(8, "big") + msg
    extra_in = extra_in or b""
    ks = []
    for i in range(2):
        data = (rand + len(pk).to_bytes(1, "big") + pk + len(aggpk).to_bytes(1, "big") + aggpk
                + msg_prefixed + len(extra_in).to_bytes(4, "big") + extra_in + i.to_bytes(1, "big"))
        ks.append(int.from_bytes(tagged_hash("MuSig/nonce", data), "big") % N)
    assert all(ks), "k == 0 (probability 2^-256)"
    k1, k2 = (k.to_bytes(32, "big") for k in ks)
    pubnonce = (PrivateKey(k1).public_key.format() + PrivateKey(k2).public_key.format())
    return k1 + k2 + pk, pubnonce
