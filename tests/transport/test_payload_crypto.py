"""Payload encryption to the n participants (ECDH + ChaCha20-Poly1305), real keys."""
from __future__ import annotations

import pytest

from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.coordinator.payload_crypto import PayloadError, decrypt_payload, encrypt_payload


def key(i: int) -> bytes:
    return (1000 + i).to_bytes(32, "big")


KEYS = [plain_pubkey(key(i)) for i in range(5)]
CTX = b"request-id-and-creator"


def test_every_recipient_reads_it_and_nobody_else():
    blob = encrypt_payload(b"psbt bytes" * 50, KEYS, CTX)
    for i in range(5):
        assert decrypt_payload(blob, key(i), KEYS, CTX) == b"psbt bytes" * 50
    with pytest.raises(PayloadError, match="not addressed"):
        decrypt_payload(blob, key(9), KEYS, CTX)
    assert b"psbt bytes" not in blob


def test_tampering_context_and_recipient_list_are_detected():
    blob = bytearray(encrypt_payload(b"secret", KEYS, CTX))
    with pytest.raises(PayloadError, match="authentication"):
        decrypt_payload(bytes(blob), key(0), KEYS, b"another request")
    with pytest.raises(PayloadError):
        decrypt_payload(bytes(blob), key(0), KEYS[:4] + [plain_pubkey(key(9))], CTX)
    blob[-1] ^= 1
    with pytest.raises(PayloadError, match="authentication"):
        decrypt_payload(bytes(blob), key(0), KEYS, CTX)


def test_malformed_input_is_a_typed_error():
    blob = encrypt_payload(b"x", KEYS, CTX)
    for bad in (b"", b"\x02" + blob[1:], blob[:60]):
        with pytest.raises(PayloadError):
            decrypt_payload(bad, key(0), KEYS, CTX)
    with pytest.raises(PayloadError):
        encrypt_payload(b"x", [KEYS[0], KEYS[0]])
    with pytest.raises(PayloadError):
        encrypt_payload(b"x", [b"\x02" + b"\xff" * 32])


def test_two_encryptions_differ():
    assert encrypt_payload(b"same", KEYS, CTX) != encrypt_payload(b"same", KEYS, CTX)
