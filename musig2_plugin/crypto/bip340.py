"""BIP-340 Schnorr signatures and tagged hashes over libsecp256k1 (via coincurve).

Every signed record and protocol message of the plugin goes through these three
functions, so they validate lengths themselves and never return a half-result:
a malformed key or signature is simply "not valid" for ``schnorr_verify``.
"""
from __future__ import annotations

import hashlib
import os

from coincurve import PrivateKey, PublicKeyXOnly

from .errors import InvalidMessageLength, InvalidPublicKey, InvalidSecretKey


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP-340 tagged hash: domain separation between record and message types."""
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def _private_key(seckey: bytes) -> PrivateKey:
    if not isinstance(seckey, (bytes, bytearray)) or len(seckey) != 32:
        raise InvalidSecretKey("secret key must be 32 bytes")
    try:
        return PrivateKey(bytes(seckey))
    except Exception as exc:  # coincurve raises ValueError for 0 or >= n
        raise InvalidSecretKey("secret key out of range") from exc


def xonly_pubkey(seckey: bytes) -> bytes:
    """The 32-byte x-only public key that BIP-340 signatures of ``seckey`` verify under."""
    return _private_key(seckey).public_key.format(compressed=True)[1:]


def plain_pubkey(seckey: bytes) -> bytes:
    """The 33-byte compressed public key (the MuSig2 participant key form)."""
    return _private_key(seckey).public_key.format(compressed=True)


def schnorr_sign(seckey: bytes, msg32: bytes, aux_rand: bytes | None = None) -> bytes:
    """Sign a 32-byte message; fresh auxiliary randomness unless the caller fixes it (tests)."""
    if not isinstance(msg32, (bytes, bytearray)) or len(msg32) != 32:
        raise InvalidMessageLength("BIP-340 messages here are exactly 32 bytes")
    key = _private_key(seckey)
    aux = os.urandom(32) if aux_rand is None else bytes(aux_rand)
    if len(aux) != 32:
        raise ValueError("aux_rand must be 32 bytes")
    return key.sign_schnorr(bytes(msg32), aux)


def schnorr_verify(xonly: bytes, msg32: bytes, sig: bytes) -> bool:
    """True only for a well-formed, valid signature; any malformed input is False."""
    if not (isinstance(xonly, (bytes, bytearray)) and len(xonly) == 32):
        return False
    if not (isinstance(msg32, (bytes, bytearray)) and len(msg32) == 32):
        return False
    if not (isinstance(sig, (bytes, bytearray)) and len(sig) == 64):
        return False
    try:
        key = PublicKeyXOnly(bytes(xonly))
    except Exception:
        return False
    try:
        return bool(key.verify(bytes(sig), bytes(msg32)))
    except Exception:
        return False


def parse_xonly(xonly: bytes, index: int | None = None) -> bytes:
    """Check that 32 bytes are the x coordinate of a curve point; raise naming the index."""
    if not (isinstance(xonly, (bytes, bytearray)) and len(xonly) == 32):
        raise InvalidPublicKey(index, "x-only public key must be 32 bytes")
    try:
        PublicKeyXOnly(bytes(xonly))
    except Exception as exc:
        raise InvalidPublicKey(index, "not a point on the curve") from exc
    return bytes(xonly)
