"""The connection handshake: is the listener at this endpoint the key we want to reach?

Advertisements and JOINs name an endpoint for a key, and their signature only
proves that the key's owner *claims* that endpoint: it may be somebody else's
listener (a victim's server, another wallet's node). So before the first
message to a key on a new connection, the dialer sends a fresh nonce and the
listener answers with its participant key and a BIP-340 signature over
``tagged_hash(HELLO_TAG, chain id || nonce || key)``. A different key, another
chain, no answer or junk fails the handshake (see dialguard.py for what a
failure costs the endpoint afterwards).
"""
from __future__ import annotations

import os

from ..crypto import plain_pubkey, schnorr_sign, schnorr_verify, tagged_hash
from ..foundation import constants as C
from ..foundation.errors import Musig2Error


class HandshakeFailed(Musig2Error):
    """The listener did not prove the expected key. ``speaks_protocol``: it answered with a
    well-formed hello (another key or chain), so the endpoint is a node of ours."""

    def __init__(self, message: str, *, speaks_protocol: bool) -> None:
        super().__init__(message)
        self.speaks_protocol = speaks_protocol


def _digest(chain_id: bytes, nonce: bytes, pubkey: bytes) -> bytes:
    return tagged_hash(C.HELLO_TAG, chain_id + nonce + pubkey)


def new_nonce() -> bytes:
    return os.urandom(C.HELLO_NONCE_LEN)


def answer_hello(seckey: bytes, chain_id: bytes, nonce_hex: object) -> dict:
    """The listener's answer; raises ValueError on a malformed nonce."""
    if not isinstance(nonce_hex, str) or len(nonce_hex) != 2 * C.HELLO_NONCE_LEN:
        raise ValueError("hello nonce must be 32 bytes in hex")
    nonce = bytes.fromhex(nonce_hex)
    pubkey = plain_pubkey(seckey)
    return {"key": pubkey.hex(),
            "sig": schnorr_sign(seckey, _digest(chain_id, nonce, pubkey)).hex()}


def check_hello(answer: object, *, expect: bytes, chain_id: bytes, nonce: bytes) -> None:
    """Raise ``HandshakeFailed`` unless ``answer`` proves key ``expect`` on ``chain_id``."""
    if not isinstance(answer, dict) or not isinstance(answer.get("key"), str) \
            or not isinstance(answer.get("sig"), str) or len(answer["key"]) != 66 \
            or len(answer["sig"]) != 128:
        raise HandshakeFailed("malformed hello answer", speaks_protocol=False)
    try:
        key, sig = bytes.fromhex(answer["key"]), bytes.fromhex(answer["sig"])
    except ValueError:
        raise HandshakeFailed("malformed hello answer", speaks_protocol=False) from None
    if key[0] not in (2, 3) or not schnorr_verify(key[1:], _digest(chain_id, nonce, key), sig):
        # a node of another chain signs another digest: it is ours, but not for us
        raise HandshakeFailed("hello signature does not verify (another chain, or forged)",
                              speaks_protocol=True)
    if key[1:] != expect[-32:]:
        raise HandshakeFailed(f"the listener is key {key.hex()[:16]}..., not the one expected",
                              speaks_protocol=True)
