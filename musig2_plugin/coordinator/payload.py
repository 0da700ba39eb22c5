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
hint count u8 | hints (key 33 | kind u8 | host len u8 | host | port u16 [| relay key 33]) |
app len u32 | app.

Written and read with the records layer's codec primitives (RecordWriter /
RecordReader): one bounds-checked big-endian codec for everything the plugin
signs or encrypts, not a second hand-rolled struct parser beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..foundation.errors import Musig2Error
from ..foundation.endpoint import Endpoint, InvalidEndpoint, Reach
from ..records import RecordError, RecordReader, RecordWriter
from ..session import SpecError, Tweak

PAYLOAD_PLAIN_VERSION = 1
_KEY_LEN = 33          # compressed secp256k1 public key of a participant / relay
_MERKLE_LEN = 32
_MAX_HINTS = 0xFF      # the hint count is one byte


class PayloadFormatError(Musig2Error, ValueError):
    """The plaintext is not a payload this code writes: refused whole, nothing used.

    A refusal by the shared codec (truncation, trailing bytes, an over-long
    field) is chained as ``__cause__``, so the payload and the records are
    seen to refuse a malformed length the same way.
    """


@dataclass(frozen=True)
class RequestPayload:
    tweak: Tweak = Tweak.TAPROOT
    merkle_root: bytes | None = None
    endpoints: dict = field(default_factory=dict)     # key33 -> Endpoint (or (host, port))
    app_data: bytes = b""

    def encode(self) -> bytes:
        try:
            return self._encode()
        except RecordError as exc:
            raise PayloadFormatError(f"cannot encode payload: {exc}") from exc

    def _encode(self) -> bytes:
        w = RecordWriter()
        w.u8(PAYLOAD_PLAIN_VERSION)
        w.u8(Tweak.parse(self.tweak).wire)
        if self.merkle_root is None:
            w.u8(0)
        else:
            if len(self.merkle_root) != _MERKLE_LEN:
                raise PayloadFormatError("merkle root must be 32 bytes")
            w.u8(1)
            w.raw(self.merkle_root)
        if len(self.endpoints) > _MAX_HINTS:
            raise PayloadFormatError("too many endpoint hints")
        w.u8(len(self.endpoints))
        for key, value in sorted(self.endpoints.items()):
            try:
                ep = Endpoint.of(value)
            except InvalidEndpoint:
                raise PayloadFormatError("bad endpoint hint") from None
            host = ep.host.encode("ascii")
            if len(key) != _KEY_LEN or not 0 < len(host) < 256:
                raise PayloadFormatError("bad endpoint hint")
            # key | kind u8 | host (len u8) | port u16 [| relay key 33]
            w.raw(key)
            w.u8(int(ep.kind))
            w.var8(host)
            w.u16(ep.port)
            if ep.kind is Reach.RELAY:
                w.raw(ep.relay_key)
        w.u32(len(self.app_data))
        w.raw(self.app_data)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, *, max_app: int) -> "RequestPayload":
        try:
            return cls._decode(RecordReader(bytes(data)), max_app)
        except RecordError as exc:
            raise PayloadFormatError(f"truncated or malformed payload: {exc}") from exc
        except UnicodeDecodeError:
            raise PayloadFormatError("truncated or malformed payload: host is not ASCII") from None

    @classmethod
    def _decode(cls, r: RecordReader, max_app: int) -> "RequestPayload":
        version = r.u8("payload version")
        if version != PAYLOAD_PLAIN_VERSION:
            raise PayloadFormatError(f"unknown payload version {version}")
        try:
            tweak = Tweak.from_wire(r.u8("tweak"))
        except SpecError:
            raise PayloadFormatError("unknown tweak") from None
        merkle = None
        flag = r.u8("merkle flag")
        if flag == 1:
            if tweak is not Tweak.TAPROOT:
                raise PayloadFormatError("merkle root without taproot tweak")
            merkle = r.take(_MERKLE_LEN, "merkle root")
        elif flag != 0:
            raise PayloadFormatError("bad merkle flag")
        endpoints = {}
        for _ in range(r.u8("hint count")):
            key = r.take(_KEY_LEN, "hint key")
            kind = r.u8("hint kind")
            host = r.var8("hint host", 0xFF).decode("ascii")
            port = r.u16("hint port")
            relay_key = r.take(_KEY_LEN, "hint relay key") if kind == Reach.RELAY else None
            if key[0] not in (2, 3) or not host or port == 0:
                raise PayloadFormatError("bad endpoint hint")
            try:
                endpoints[key] = Endpoint(host, port, kind, relay_key)
            except InvalidEndpoint:
                raise PayloadFormatError("bad endpoint hint") from None
        alen = r.u32("application data length")
        if alen > max_app or alen != r.remaining:
            raise PayloadFormatError("application data length is wrong or too large")
        return cls(tweak, merkle, endpoints, r.take(alen, "application data"))
