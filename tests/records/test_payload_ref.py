"""The payload commitment of signing requests: canonical, signed, strictly bounded."""
from __future__ import annotations

import os

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.records import (InvalidField, InvalidSignature, PayloadRef, RecordError,
                                   SigningRequest, decode_record)

SK = bytes.fromhex("11" * 32)
KEYS = [plain_pubkey(SK), plain_pubkey(bytes.fromhex("22" * 32))]


def _req(**kw) -> SigningRequest:
    args = dict(keys=KEYS, messages=[bytes(32)], host="127.0.0.1", port=4000)
    args.update(kw)
    return SigningRequest.create(SK, **args, chain=REGTEST)


def test_commitment_round_trips_and_is_covered_by_the_signature():
    blob = os.urandom(300_000)
    rec = _req(payload_ref=PayloadRef.of(blob))
    data = rec.encode()
    assert decode_record(data, chain=REGTEST) == rec and rec.payload_ref.matches(blob)
    assert not rec.payload_ref.matches(blob[:-1]) and not rec.payload_ref.matches(os.urandom(300_000))
    # digest 32 | length u32 | signature 64 end the record: flip a digest byte, then a length byte.
    for pos in (len(data) - 64 - 4 - 1, len(data) - 64 - 1):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(InvalidSignature):
            decode_record(bytes(bad), chain=REGTEST)


def test_commitment_bounds_and_exclusivity():
    ref = PayloadRef.of(b"x" * 5000)
    with pytest.raises(InvalidField, match="not both"):
        _req(payload=b"p", payload_ref=ref)
    with pytest.raises(InvalidField, match="endpoint"):
        _req(payload_ref=ref, host=None, port=None)
    for length in (0, C.MAX_FETCHED_PAYLOAD_BYTES + 1):
        with pytest.raises(InvalidField, match="payload length"):
            _req(payload_ref=PayloadRef(bytes(32), length))
    with pytest.raises(InvalidField, match="digest"):
        _req(payload_ref=PayloadRef(bytes(31), 10))
    assert _req(payload_ref=PayloadRef(bytes(32), C.MAX_FETCHED_PAYLOAD_BYTES)).payload_ref


def test_flags_byte_keeps_the_old_meaning_and_refuses_unknown_bits():
    small = _req(payload=b"p" * 100)
    data = small.encode()
    flags_at = len(data) - 64 - 2 - len(b"127.0.0.1") - 1 - 1
    assert data[flags_at] == 1                      # endpoint only: the pre-commitment layout
    no_ep = _req(payload=b"p", host=None, port=None).encode()
    assert no_ep[-65] == 0
    for flags in (2, 3, 4, 0x81):                   # commitment bit without its bytes, unknown bits
        bad = bytearray(data)
        bad[flags_at] = flags
        with pytest.raises(RecordError):
            decode_record(bytes(bad), chain=REGTEST)
