"""Every decoder that reads peer bytes fails with its own typed error, never anything else."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.coordinator.payload import PayloadFormatError, RequestPayload
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.coordinator.payload_crypto import PayloadError, decrypt_payload, encrypt_payload
from musig2_plugin.session.messages import BadBody, decode_body, encode_body
from musig2_plugin.transport import Envelope, MalformedEnvelope, MsgType, WrongChainMessage

KEY = (7).to_bytes(32, "big")
PUB = plain_pubkey(KEY)
GOOD = Envelope.sign(KEY, msg_type=MsgType.NONCE, session_id=bytes(32), sender=PUB, counter=1,
                     body=b'{"a":0,"e":0,"pn":"00"}', chain=REGTEST).encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_envelope_decode_random_bytes(data):
    try:
        env = Envelope.decode(data, chain=REGTEST)
    except (MalformedEnvelope, WrongChainMessage):
        return
    assert not env.verify()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_envelope_single_byte_flips_never_verify(pos, flip):
    data = bytearray(GOOD)
    data[pos] ^= flip
    try:
        env = Envelope.decode(bytes(data), chain=REGTEST)
    except (MalformedEnvelope, WrongChainMessage):
        return
    assert not env.verify()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=140),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=5),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(MsgType)), json_values)
def test_body_decode_random_json(msg_type, value):
    try:
        decode_body(msg_type, json.dumps(value).encode(), 3)
    except BadBody:
        pass


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(list(MsgType)), st.binary(max_size=200))
def test_body_decode_random_bytes(msg_type, data):
    try:
        decode_body(msg_type, data, 3)
    except BadBody:
        pass


def test_body_roundtrip():
    body = encode_body(MsgType.NONCES, epoch=1, attempt=2, pubnonces=[bytes(66)] * 3,
                       aggnonce=bytes(66))
    assert decode_body(MsgType.NONCES, body, 3) == {"epoch": 1, "attempt": 2,
                                                    "pubnonces": [bytes(66)] * 3,
                                                    "aggnonce": bytes(66)}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_request_payload_random_bytes(data):
    try:
        RequestPayload.decode(data, max_app=1000)
    except PayloadFormatError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_payload_decrypt_random_bytes(data):
    try:
        decrypt_payload(data, KEY, [PUB, plain_pubkey((8).to_bytes(32, "big"))])
    except PayloadError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255))
def test_payload_any_flip_is_detected(pos, flip):
    keys = [PUB, plain_pubkey((8).to_bytes(32, "big"))]
    blob = bytearray(encrypt_payload(b"transaction" * 10, keys, b"ctx"))
    blob[pos % len(blob)] ^= flip
    try:
        decrypt_payload(bytes(blob), KEY, keys, b"ctx")
    except PayloadError:
        return
    raise AssertionError("a modified payload decrypted")
