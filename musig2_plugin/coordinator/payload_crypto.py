"""Encryption of a signing request's transaction payload to its n participants.

Signing requests are stored in a public DHT, and the transaction inside says
who pays whom: only the addressed participants may read it. We use a fresh
random content key for the payload (ChaCha20-Poly1305) and wrap that key once
per participant with a key derived from ECDH between a fresh ephemeral key and
that participant's key. Every key is used for exactly one encryption, which is
why a fixed all-zero AEAD nonce is safe here. The associated data binds the
ciphertext to the caller's context (the request's identity) and to the
recipient list, so a blob cannot be moved into another request.

Layout: version u8 | ephemeral pubkey 33 | n u8 | n x wrapped key (32 + 16 tag) |
payload ciphertext (+16 tag).
"""
from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ..foundation import constants as C
from ..foundation.errors import Musig2Error
from ..crypto import CryptoError, ecdh, new_secret_key, plain_pubkey, tagged_hash

_ZERO_NONCE = bytes(12)
_WRAPPED_LEN = 32 + 16
_MAX_RECIPIENTS = 255


class PayloadError(Musig2Error, ValueError):
    """The payload cannot be encrypted or decrypted (not for us, tampered, malformed)."""


def _aad(context: bytes, ephemeral: bytes, recipients: list[bytes]) -> bytes:
    return tagged_hash(C.PAYLOAD_AAD_TAG, len(context).to_bytes(4, "big") + context
                       + ephemeral + b"".join(recipients))


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes, index: int) -> bytes:
    return tagged_hash(C.PAYLOAD_KDF_TAG, shared + ephemeral + recipient + bytes([index]))


def _check_recipients(recipients) -> list[bytes]:
    keys = [bytes(k) for k in recipients]
    if not 1 <= len(keys) <= _MAX_RECIPIENTS:
        raise PayloadError("between 1 and 255 recipients")
    if len(set(keys)) != len(keys):
        raise PayloadError("duplicate recipient")
    return keys


def encrypt_payload(plaintext: bytes, recipients, context: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` so that each 33-byte key in ``recipients`` can read it."""
    keys = _check_recipients(recipients)
    # ECDH on the crypto layer's backend: works with coincurve or electrum_ecc's libsecp256k1.
    eph = new_secret_key()
    eph_pub = plain_pubkey(eph)
    aad = _aad(context, eph_pub, keys)
    content_key = os.urandom(32)
    parts = [bytes([C.PAYLOAD_VERSION]), eph_pub, bytes([len(keys)])]
    for i, key in enumerate(keys):
        try:
            shared = ecdh(eph, key)
        except CryptoError as exc:
            raise PayloadError(f"recipient {i} is not a valid public key") from exc
        wrapped = ChaCha20Poly1305(_wrap_key(shared, eph_pub, key, i)).encrypt(
            _ZERO_NONCE, content_key, aad)
        parts.append(wrapped)
    # The body also authenticates every recipient's wrapped key, so each recipient detects
    # a change anywhere in the blob (not only in its own slot).
    body_aad = _body_aad(aad, b"".join(parts[3:]))
    parts.append(ChaCha20Poly1305(content_key).encrypt(_ZERO_NONCE, bytes(plaintext), body_aad))
    return b"".join(parts)


def _body_aad(aad: bytes, wrapped_keys: bytes) -> bytes:
    return tagged_hash(C.PAYLOAD_AAD_TAG, aad + wrapped_keys)


def decrypt_payload(blob: bytes, seckey: bytes, recipients, context: bytes = b"") -> bytes:
    """Decrypt with our participant secret key; raises PayloadError if it is not for us."""
    keys = _check_recipients(recipients)
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < 1 + 33 + 1:
        raise PayloadError("payload too short")
    if blob[0] != C.PAYLOAD_VERSION:
        raise PayloadError(f"unknown payload version {blob[0]}")
    eph_pub = bytes(blob[1:34])
    n = blob[34]
    if n != len(keys):
        raise PayloadError("payload recipient count does not match the request")
    body_at = 35 + n * _WRAPPED_LEN
    if len(blob) < body_at + 16:
        raise PayloadError("payload truncated")
    try:
        my_key = plain_pubkey(bytes(seckey))
    except (CryptoError, TypeError) as exc:
        raise PayloadError("bad secret key") from exc
    if my_key not in keys:
        raise PayloadError("payload is not addressed to us")
    index = keys.index(my_key)
    try:
        shared = ecdh(bytes(seckey), eph_pub)
    except CryptoError as exc:
        raise PayloadError("bad ephemeral key") from exc
    aad = _aad(context, eph_pub, keys)
    wrapped = bytes(blob[35 + index * _WRAPPED_LEN: 35 + (index + 1) * _WRAPPED_LEN])
    try:
        content_key = ChaCha20Poly1305(_wrap_key(shared, eph_pub, my_key, index)).decrypt(
            _ZERO_NONCE, wrapped, aad)
        body_aad = _body_aad(aad, bytes(blob[35:body_at]))
        return ChaCha20Poly1305(content_key).decrypt(_ZERO_NONCE, bytes(blob[body_at:]), body_aad)
    except InvalidTag:
        raise PayloadError("payload authentication failed (tampered or wrong context)") from None
