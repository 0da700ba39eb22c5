"""The plaintext inside a signing request's encrypted payload.

The record itself (records.SigningRequest) carries the participants and the
32-byte messages in the clear, because the DHT must route it and anyone may
check its signature. What only participants should see goes here, encrypted
to them (payload_crypto):

* the tweak the messages are signed under (taproot output key by default,
  optionally with a script-tree merkle root; or none),
* endpoint hints for the first coordinators in each session's election order,
  so participants can reach the coordinator without a DHT lookup (the
  coordinator learns everyone else's endpoint from their signed JOINs),
* the application data: for the Electrum edge, the PSBT from which each
  co-signer recomputes the sighash before approving.

Layout: version u8 | tweak u8 (0 none, 1 taproot) | merkle flag u8 [| root 32] |
hint count u8 | hints (key 33 | host len u8 | host | port u16) | app len u32 | app.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..foundation.errors import Musig2Error
from ..foundation.endpoint import Endpoint, InvalidEndpoint, Reach
from ..session import SpecError, Tweak

PAYLOAD_PLAIN_VERSION = 1


class PayloadFormatError(Musig2Error, ValueError):
    pass


@dataclass(frozen=True)
class RequestPayload:
    tweak: Tweak = Tweak.TAPROOT
    merkle_root: bytes | None = None
    endpoints: dict = field(default_factory=dict)     # key33 -> Endpoint (or (host, port))
    app_data: bytes = b""

    def encode(self) -> bytes:
        out = bytearray([PAYLOAD_PLAIN_VERSION, Tweak.parse(self.tweak).wire])
        if self.merkle_root is None:
            out.append(0)
        else:
            if len(self.merkle_root) != 32:
                raise PayloadFormatError("merkle root must be 32 bytes")
            out.append(1)
            out += self.merkle_root
        if len(self.endpoints) > 255:
            raise PayloadFormatError("too many endpoint hints")
        out.append(len(self.endpoints))
        for key, value in sorted(self.endpoints.items()):
            try:
                ep = Endpoint.of(value)
            except InvalidEndpoint:
                raise PayloadFormatError("bad endpoint hint") from None
            h = ep.host.encode("ascii")
            if len(key) != 33 or not 0 < len(h) < 256:
                raise PayloadFormatError("bad endpoint hint")
            # key | kind u8 | host (len u8) | port u16 [| relay key 33]
            out += key + bytes([int(ep.kind), len(h)]) + h + struct.pack(">H", ep.port)
            if ep.kind is Reach.RELAY:
                out += ep.relay_key
        out += struct.pack(">I", len(self.app_data)) + self.app_data
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes, *, max_app: int) -> "RequestPayload":
        try:
            return cls._decode(data, max_app)
        except (IndexError, struct.error, UnicodeDecodeError):
            raise PayloadFormatError("truncated or malformed payload") from None

    @classmethod
    def _decode(cls, data: bytes, max_app: int) -> "RequestPayload":
        if data[0] != PAYLOAD_PLAIN_VERSION:
            raise PayloadFormatError(f"unknown payload version {data[0]}")
        try:
            tweak = Tweak.from_wire(data[1])
        except SpecError:
            raise PayloadFormatError("unknown tweak") from None
        pos = 3
        merkle = None
        if data[2] == 1:
            if tweak is not Tweak.TAPROOT:
                raise PayloadFormatError("merkle root without taproot tweak")
            merkle = bytes(data[3:35])
            if len(merkle) != 32:
                raise PayloadFormatError("truncated merkle root")
            pos = 35
        elif data[2] != 0:
            raise PayloadFormatError("bad merkle flag")
        count = data[pos]
        pos += 1
        endpoints = {}
        for _ in range(count):
            key = bytes(data[pos:pos + 33])
            kind, hlen = data[pos + 33], data[pos + 34]
            host = bytes(data[pos + 35:pos + 35 + hlen]).decode("ascii")
            (port,) = struct.unpack_from(">H", data, pos + 35 + hlen)
            pos += 35 + hlen + 2
            relay_key = None
            if kind == Reach.RELAY:
                relay_key = bytes(data[pos:pos + 33])
                pos += 33
            if len(key) != 33 or key[0] not in (2, 3) or not host or port == 0:
                raise PayloadFormatError("bad endpoint hint")
            try:
                endpoints[key] = Endpoint(host, port, kind, relay_key)
            except InvalidEndpoint:
                raise PayloadFormatError("bad endpoint hint") from None
        (alen,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if alen > max_app or pos + alen != len(data):
            raise PayloadFormatError("application data length is wrong or too large")
        return cls(tweak, merkle, endpoints, bytes(data[pos:pos + alen]))
