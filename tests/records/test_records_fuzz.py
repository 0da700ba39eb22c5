"""Property test: decode_record raises nothing but RecordError, whatever the bytes."""
from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings, strategies as st

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.records import (Advertisement, RecordError, SigningRequest, Withdrawal,
                                   decode_record)

NOW = time.time()
SK = bytes(31) + b"\x07"
SEEDS = [
    Advertisement.create(SK, tx_types=["spend", "coinjoin"], min_amount_sat=1, max_amount_sat=9,
                         host="127.0.0.1", port=1234, nickname="n", trust_requirements=["a"],
                         ttl=3600, now=NOW, chain=REGTEST).encode(),
    Withdrawal.create(SK, ttl=3600, now=NOW, chain=REGTEST).encode(),
    SigningRequest.create(SK, keys=[plain_pubkey(SK), plain_pubkey(bytes(31) + b"\x09")],
                          messages=[os.urandom(32)], payload=b"xyz", metadata="m",
                          host="::1", port=2, now=NOW, chain=REGTEST).encode(),
]


def _decode(data: bytes) -> None:
    try:
        decode_record(data, now=NOW, chain=REGTEST)
    except RecordError:
        pass


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _decode(data)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_with_valid_header(tail):
    for kind in (1, 2, 3):
        _decode(bytes([C.RECORD_VERSION, kind]) + SEEDS[0][2:39] + tail)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        max_size=6),
       st.integers(0, 10_000), st.integers(0, 10_000), st.binary(max_size=20))
def test_mutated_records(seed, flips, cut, insert_at, insert):
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = bytes(data)
    _decode(data)
    _decode(data[: cut % (len(data) + 1)])
    pos = insert_at % (len(data) + 1)
    _decode(data[:pos] + insert + data[pos:])
