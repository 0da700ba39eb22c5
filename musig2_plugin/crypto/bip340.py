"""BIP-340 Schnorr signatures and tagged hashes over libsecp256k1.

Every signed record and protocol message of the plugin goes through these
functions, so they validate lengths themselves and never return a half-result:
a malformed key or signature is simply "not valid" for ``schnorr_verify``.
They run on our own non-aborting context (see secp.py) rather than
coincurve's global one, so no input can abort the process.
"""
from __future__ import annotations

import hashlib
import os

from .errors import InvalidMessageLength, InvalidPublicKey, InvalidSecretKey
from .secp import call, ffi, lib

_TAG_CACHE: dict[str, bytes] = {}


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP-340 tagged hash: domain separation between record and message types."""
    tag_digest = _TAG_CACHE.get(tag)
    if tag_digest is None:
        tag_digest = hashlib.sha256(tag.encode()).digest()
        if len(_TAG_CACHE) < 256:  # a handful of protocol tags; never grows from peer input
            _TAG_CACHE[tag] = tag_digest
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def keypair(seckey: bytes):
    """32-byte secret -> ``secp256k1_keypair *``; InvalidSecretKey if not in [1, n-1]."""
    if not isinstance(seckey, (bytes, bytearray)) or len(seckey) != 32:
        raise InvalidSecretKey("secret key must be 32 bytes")
    kp = ffi.new("secp256k1_keypair *")
    if call(lib.secp256k1_keypair_create, kp, bytes(seckey)) != 1:
        raise InvalidSecretKey("secret key out of range")
    return kp


def keypair_pub(kp):
    """(``secp256k1_pubkey *``, 33-byte encoding) of a keypair, without re-multiplying."""
    pk = ffi.new("secp256k1_pubkey *")
    call(lib.secp256k1_keypair_pub, pk, kp)
    out = ffi.new("unsigned char[33]")
    size = ffi.new("size_t *", 33)
    call(lib.secp256k1_ec_pubkey_serialize, out, size, pk, lib.SECP256K1_EC_COMPRESSED)
    return pk, bytes(ffi.buffer(out, 33))


def xonly_pubkey(seckey: bytes) -> bytes:
    """The 32-byte x-only public key that BIP-340 signatures of ``seckey`` verify under."""
    return plain_pubkey(seckey)[1:]


def plain_pubkey(seckey: bytes) -> bytes:
    """The 33-byte compressed public key (the MuSig2 participant key form)."""
    if not isinstance(seckey, (bytes, bytearray)) or len(seckey) != 32:
        raise InvalidSecretKey("secret key must be 32 bytes")
    pk = ffi.new("secp256k1_pubkey *")
    if call(lib.secp256k1_ec_pubkey_create, pk, bytes(seckey)) != 1:
        raise InvalidSecretKey("secret key out of range")
    out = ffi.new("unsigned char[33]")
    size = ffi.new("size_t *", 33)
    call(lib.secp256k1_ec_pubkey_serialize, out, size, pk, lib.SECP256K1_EC_COMPRESSED)
    return bytes(ffi.buffer(out, 33))


def schnorr_sign(seckey: bytes, msg32: bytes, aux_rand: bytes | None = None) -> bytes:
    """Sign a 32-byte message; fresh auxiliary randomness unless the caller fixes it (tests)."""
    if not isinstance(msg32, (bytes, bytearray)) or len(msg32) != 32:
        raise InvalidMessageLength("BIP-340 messages here are exactly 32 bytes")
    kp = keypair(seckey)
    aux = os.urandom(32) if aux_rand is None else bytes(aux_rand)
    if len(aux) != 32:
        raise ValueError("aux_rand must be 32 bytes")
    sig = ffi.new("unsigned char[64]")
    if call(lib.secp256k1_schnorrsig_sign32, sig, bytes(msg32), kp, aux) != 1:
        raise InvalidSecretKey("signing failed")
    out = bytes(ffi.buffer(sig, 64))
    # Same fault-attack reasoning as MuSig2's partial signatures: never release
    # a signature we have not checked.
    if not schnorr_verify(xonly_pubkey(seckey), msg32, out):
        raise InvalidSecretKey("own signature does not verify (fault?); not released")
    return out


def _parse_xonly_raw(xonly: bytes):
    key = ffi.new("secp256k1_xonly_pubkey *")
    if call(lib.secp256k1_xonly_pubkey_parse, key, bytes(xonly)) != 1:
        return None
    return key


def schnorr_verify(xonly: bytes, msg32: bytes, sig: bytes) -> bool:
    """True only for a well-formed, valid signature; any malformed input is False."""
    if not (isinstance(xonly, (bytes, bytearray)) and len(xonly) == 32):
        return False
    if not (isinstance(msg32, (bytes, bytearray)) and len(msg32) == 32):
        return False
    if not (isinstance(sig, (bytes, bytearray)) and len(sig) == 64):
        return False
    key = _parse_xonly_raw(xonly)
    if key is None:
        return False
    return call(lib.secp256k1_schnorrsig_verify, bytes(sig), bytes(msg32), 32, key) == 1


def parse_xonly(xonly: bytes, index: int | None = None) -> bytes:
    """Check that 32 bytes are the x coordinate of a curve point; raise naming the index."""
    if not (isinstance(xonly, (bytes, bytearray)) and len(xonly) == 32):
        raise InvalidPublicKey(index, "x-only public key must be 32 bytes")
    if _parse_xonly_raw(xonly) is None:
        raise InvalidPublicKey(index, "not a point on the curve")
    return bytes(xonly)
