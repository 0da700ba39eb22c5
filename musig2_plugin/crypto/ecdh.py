"""ECDH on our own context (the backend's libsecp256k1), for payload encryption.

WHY here and not coincurve's ``PrivateKey.ecdh``: coincurve is absent from Electrum's
binary bundles. libsecp256k1's ``secp256k1_ecdh`` with its default hash function gives
SHA-256 of the compressed shared point, the very bytes coincurve returns, so blobs made
by either backend decrypt with the other.
"""
from __future__ import annotations

import os

from .errors import InvalidSecretKey, LibraryRefusal
from .musig import parse_pubkey
from .secp import call, ffi, lib

__all__ = ["ecdh", "new_secret_key", "check_secret_key"]


def check_secret_key(seckey: bytes) -> bytes:
    """``seckey`` as bytes if it is a valid secret key (32 bytes, in [1, n-1])."""
    if not isinstance(seckey, (bytes, bytearray)) or len(seckey) != 32:
        raise InvalidSecretKey("secret key must be 32 bytes")
    if call(lib.secp256k1_ec_seckey_verify, bytes(seckey)) != 1:
        raise InvalidSecretKey("secret key out of range")
    return bytes(seckey)


def new_secret_key() -> bytes:
    """A fresh random secret key (rejection sampling; a retry has probability ~2^-128)."""
    while True:
        candidate = os.urandom(32)
        if call(lib.secp256k1_ec_seckey_verify, candidate) == 1:
            return candidate


def ecdh(seckey: bytes, pubkey: bytes) -> bytes:
    """SHA-256 of the compressed point ``seckey · pubkey`` (33-byte compressed ``pubkey``).

    Raises InvalidPublicKey (from parse_pubkey) / InvalidSecretKey on bad input; never returns a partial result.
    """
    sk = check_secret_key(seckey)
    pk = parse_pubkey(pubkey)
    out = ffi.new("unsigned char[32]")
    if call(lib.secp256k1_ecdh, out, pk, sk, ffi.NULL, ffi.NULL) != 1:
        raise LibraryRefusal("secp256k1_ecdh failed")
    return bytes(ffi.buffer(out, 32))

