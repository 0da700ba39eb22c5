"""The request payload is written and read with the records codec, byte for byte as before.

The golden bytes below were produced by the payload's former hand-rolled struct codec
(main at ef7de73): existing payloads in flight keep decoding, new ones encode identically.
The sharing is shown by behaviour, not by import: a malformed length is refused by the
same codec error class the records layer raises, chained under the payload's typed error.
"""
from __future__ import annotations

import pytest

from musig2_plugin.coordinator import PayloadFormatError, RequestPayload, Tweak
from musig2_plugin.foundation.endpoint import Endpoint, Reach
from musig2_plugin.records import InvalidField, MalformedRecord, RecordReader, RecordWriter

RELAY_KEY = b"\x02" + bytes([5]) * 32
PAYLOAD = RequestPayload(
    merkle_root=bytes(range(32)),
    endpoints={b"\x02" + bytes(32): ("127.0.0.1", 9),
               b"\x03" + bytes([7]) * 32: Endpoint("relay.example", 4000, Reach.RELAY, RELAY_KEY)},
    app_data=b"psbt")
GOLDEN = bytes.fromhex(
    "010101000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f02020000000000000000"
    "00000000000000000000000000000000000000000000000000093132372e302e302e310009030707070707070707"
    "070707070707070707070707070707070707070707070707010d72656c61792e6578616d706c650fa00205050505"
    "050505050505050505050505050505050505050505050505050505050000000470736274")
GOLDEN_NONE = bytes.fromhex("0100000000000000")


def test_encoding_is_byte_for_byte_the_former_format():
    assert PAYLOAD.encode() == GOLDEN
    assert RequestPayload(tweak=Tweak.NONE).encode() == GOLDEN_NONE


def test_former_bytes_decode_to_the_same_payload():
    got = RequestPayload.decode(GOLDEN, max_app=100)
    assert got.merkle_root == PAYLOAD.merkle_root and got.app_data == b"psbt"
    assert got.endpoints[b"\x03" + bytes([7]) * 32] == Endpoint("relay.example", 4000, Reach.RELAY, RELAY_KEY)
    assert got.endpoints[b"\x02" + bytes(32)] == Endpoint("127.0.0.1", 9)
    assert RequestPayload.decode(GOLDEN_NONE, max_app=0).tweak is Tweak.NONE


def _host_len_offset() -> int:
    # version, tweak, flag, root, count, then the first hint (sorted: the 0x02 key): key, kind
    return 3 + 32 + 1 + 33 + 1


def test_a_host_length_past_the_end_is_refused_like_a_record_field():
    bad = bytearray(GOLDEN)
    bad[_host_len_offset()] = 0xFF                 # claims 255 host bytes: runs past the end
    with pytest.raises(PayloadFormatError) as payload_err:
        RequestPayload.decode(bytes(bad), max_app=100)
    # the same length prefix, read by the records codec directly, fails with the same class
    r = RecordReader(bytes(bad))
    r.take(_host_len_offset(), "prefix")
    with pytest.raises(MalformedRecord) as record_err:
        r.var8("hint host", 0xFF)
    assert type(payload_err.value.__cause__) is type(record_err.value)
    assert "truncated" in str(payload_err.value)


def test_every_truncation_is_a_typed_refusal_from_the_shared_codec():
    for n in range(len(GOLDEN)):
        with pytest.raises(PayloadFormatError) as err:
            RequestPayload.decode(GOLDEN[:n], max_app=100)
        # the cut either lands inside a codec read (chained MalformedRecord) or leaves the
        # declared application length unmatched (the payload's own bound)
        cause = err.value.__cause__
        assert cause is None or isinstance(cause, MalformedRecord), (n, cause)
    assert any(isinstance(_refusal(GOLDEN[:n]).__cause__, MalformedRecord) for n in range(len(GOLDEN)))


def _refusal(data: bytes) -> PayloadFormatError:
    try:
        RequestPayload.decode(data, max_app=100)
    except PayloadFormatError as exc:
        return exc
    raise AssertionError("accepted")


def test_writer_bounds_reach_the_payload_as_its_typed_error():
    # a port outside u16 is refused by the shared writer's width check (InvalidField) when
    # the hint bypasses Endpoint's own validation; the payload reports its typed error
    w = RecordWriter()
    with pytest.raises(InvalidField):
        w.u16(1 << 16)
    huge = RequestPayload(tweak=Tweak.NONE, app_data=b"")
    object.__setattr__(huge, "app_data", _Len(1 << 32))
    with pytest.raises(PayloadFormatError) as err:
        huge.encode()
    assert isinstance(err.value.__cause__, InvalidField)


class _Len(bytes):
    """A bytes value that reports a length beyond u32 without allocating 4 GiB."""

    def __len__(self) -> int:
        return 1 << 32


def test_non_ascii_host_and_bad_prefixes_are_refused():
    bad = bytearray(GOLDEN)
    bad[_host_len_offset() + 1] = 0xC3             # first host byte not ASCII
    with pytest.raises(PayloadFormatError, match="ASCII"):
        RequestPayload.decode(bytes(bad), max_app=100)
    bad = bytearray(GOLDEN)
    bad[3 + 32 + 1] = 0x04                         # first hint key prefix not 02/03
    with pytest.raises(PayloadFormatError, match="bad endpoint hint"):
        RequestPayload.decode(bytes(bad), max_app=100)
