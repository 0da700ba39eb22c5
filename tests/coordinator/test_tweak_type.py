"""One tweak type (session.Tweak) for the session spec and the request payload's byte."""
from __future__ import annotations

import os

import pytest

from musig2_plugin.coordinator import PayloadFormatError, RequestPayload, Tweak
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.session import SessionSpec, SpecError


def test_names_and_wire_bytes_round_trip():
    assert [t.value for t in Tweak] == ["none", "taproot"]
    assert [t.wire for t in Tweak] == [0, 1]
    for t in Tweak:
        assert Tweak.from_wire(t.wire) is t and Tweak.parse(t.value) is t
        payload = RequestPayload(tweak=t, app_data=b"x")
        assert RequestPayload.decode(payload.encode(), max_app=10).tweak is t
    # the names callers write are the values: "taproot" == Tweak.TAPROOT
    assert Tweak.TAPROOT == "taproot" and f"{Tweak.NONE}" == "none"


def test_unknown_tweaks_are_typed_refusals():
    with pytest.raises(SpecError, match="unknown tweak 'keypath'"):
        Tweak.parse("keypath")
    with pytest.raises(SpecError, match="unknown tweak byte 2"):
        Tweak.from_wire(2)
    raw = bytearray(RequestPayload().encode())
    raw[1] = 2                                      # the tweak byte of the plaintext layout
    with pytest.raises(PayloadFormatError, match="unknown tweak"):
        RequestPayload.decode(bytes(raw), max_app=10)
    with pytest.raises(SpecError, match="unknown tweak"):
        RequestPayload(tweak="keypath").encode()
    keys = [plain_pubkey(os.urandom(32)) for _ in range(2)]
    with pytest.raises(SpecError, match="unknown tweak"):
        SessionSpec.build(os.urandom(32), keys, os.urandom(32), tweak="keypath")
    spec = SessionSpec.build(os.urandom(32), keys, os.urandom(32), tweak="none")
    assert spec.tweak is Tweak.NONE
