"""Signing request: "these n keys, please co-sign these messages".

Stored under the request topic of every addressed key (except the creator's
own), so an offline participant finds it later by polling its own topic. The
transaction payload is opaque here: the session layer encrypts it to the
participants because the DHT is public, and co-signers recompute the messages
from the decrypted transaction instead of trusting ``messages``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
import hashlib
from typing import Sequence

from ..foundation import constants as C
from ..foundation.chain import Chain
from .base import Record
from .codec import Reader, Writer
from .errors import InvalidField
from .fields import (Endpoint, TxType, check_bytes, check_pubkey33, check_text,
                     code_to_tx_type, decode_text, make_endpoint, read_endpoint, tx_type,
                     write_endpoint)
from .topics import topic_for_requests

KIND_SIGNING_REQUEST = 3
#: Bits of the byte after the metadata. Bit 0 (endpoint present) is the original meaning of
#: that byte; bit 1 says the payload is held by the creator and the record carries only its
#: commitment. Records with only bit 0 (or none) encode exactly as before the commitment existed.
FLAG_ENDPOINT = 1
FLAG_PAYLOAD_REF = 2
REQUEST_SLOT_PREFIX = b"R"
REQUEST_ID_LEN = 32


@dataclass(frozen=True, slots=True)
class PayloadRef:
    """Commitment to an encrypted payload too large for a DHT record.

    Inside the signed record, so the creator's signature covers it: whoever serves the
    bytes (the creator, or anyone on the path) cannot substitute others unnoticed.
    """
    digest: bytes      # SHA-256 of the encrypted payload
    length: int        # its exact length in bytes

    @classmethod
    def of(cls, blob: bytes) -> "PayloadRef":
        return cls(hashlib.sha256(blob).digest(), len(blob))

    def matches(self, blob: bytes) -> bool:
        return len(blob) == self.length and hashlib.sha256(blob).digest() == self.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningRequest(Record):
    KIND = KIND_SIGNING_REQUEST
    TAG = C.RECORD_TAG_SIGNING_REQUEST

    request_id: bytes
    tx_type: TxType
    keys: tuple[bytes, ...]
    messages: tuple[bytes, ...]
    payload: bytes = b""
    metadata: str = ""
    endpoint: Endpoint | None = None
    payload_ref: PayloadRef | None = None

    @classmethod
    def create(cls, seckey: bytes, *, chain: "Chain | bytes", keys: Sequence[bytes],
               messages: Sequence[bytes],
               payload: bytes = b"", tx_type: "TxType | str" = TxType.SPEND, metadata: str = "",
               request_id: bytes | None = None, host: str | None = None, port: int | None = None,
               ttl: float = C.SIGNING_REQUEST_DEFAULT_TTL_S, seq: int | None = None,
               now: float | None = None, payload_ref: PayloadRef | None = None,
               endpoint: Endpoint | None = None) -> "SigningRequest":
        """Sign a request as its creator; ``host``/``port`` say where the creator listens.

        ``payload_ref`` (with an empty ``payload``): the encrypted payload is too large for a
        DHT record and participants fetch it from the creator's endpoint (see docs/sessions.md).
        """
        if endpoint is None:
            endpoint = None if host is None and port is None else make_endpoint(host, port)
        elif host is not None or port is not None:
            raise InvalidField("give either host/port or an endpoint")
        return cls._signed(seckey, chain=chain, ttl=ttl, seq=seq, now=now,
                           request_id=os.urandom(REQUEST_ID_LEN) if request_id is None else request_id,
                           tx_type=_tx(tx_type), keys=tuple(keys), messages=tuple(messages),
                           payload=payload, metadata=metadata, endpoint=endpoint,
                           payload_ref=payload_ref)

    @property
    def creator(self) -> bytes:
        return self.owner

    @property
    def slot(self) -> bytes:
        return REQUEST_SLOT_PREFIX + self.owner_xonly + self.request_id

    def addressed_keys(self) -> tuple[bytes, ...]:
        others = tuple(k for k in self.keys if k[1:] != self.owner_xonly)
        return others or self.keys

    def topics(self) -> tuple[bytes, ...]:
        return tuple(topic_for_requests(k, self.chain_id) for k in self.addressed_keys())

    def addresses(self, pubkey: bytes) -> bool:
        """Whether ``pubkey`` (33-byte or x-only) is one of the participants."""
        return any(k[1:] == bytes(pubkey[-32:]) for k in self.keys)

    def _validate_body(self) -> None:
        check_bytes(self.request_id, REQUEST_ID_LEN, REQUEST_ID_LEN, "request id")
        if not isinstance(self.tx_type, TxType):
            raise InvalidField("tx_type must be a TxType")
        if not isinstance(self.keys, tuple) or not 1 <= len(self.keys) <= C.MAX_REQUEST_KEYS:
            raise InvalidField(f"a request names 1..{C.MAX_REQUEST_KEYS} keys")
        for i, key in enumerate(self.keys):
            check_pubkey33(key, f"participant key {i}")
        if len({k[1:] for k in self.keys}) != len(self.keys):
            raise InvalidField("participant keys must be distinct")
        if not isinstance(self.messages, tuple) or not 1 <= len(self.messages) <= C.MAX_REQUEST_MESSAGES:
            raise InvalidField(f"a request carries 1..{C.MAX_REQUEST_MESSAGES} messages")
        for i, msg in enumerate(self.messages):
            check_bytes(msg, C.MESSAGE_LEN, C.MESSAGE_LEN, f"message {i}")
        check_bytes(self.payload, None, C.MAX_REQUEST_PAYLOAD_BYTES, "payload")
        check_text(self.metadata, C.MAX_REQUEST_METADATA_BYTES, "metadata", multiline=True)
        if self.endpoint is not None and not isinstance(self.endpoint, Endpoint):
            raise InvalidField("endpoint must be an Endpoint or None")
        if self.payload_ref is not None:
            ref = self.payload_ref
            if not isinstance(ref, PayloadRef):
                raise InvalidField("payload_ref must be a PayloadRef or None")
            check_bytes(ref.digest, 32, 32, "payload digest")
            if not isinstance(ref.length, int) or isinstance(ref.length, bool) \
                    or not 1 <= ref.length <= C.MAX_FETCHED_PAYLOAD_BYTES:
                raise InvalidField(f"payload length must be 1..{C.MAX_FETCHED_PAYLOAD_BYTES}")
            if self.payload:
                raise InvalidField("a request carries its payload or a commitment, not both")
            if self.endpoint is None:
                raise InvalidField("a payload commitment needs the creator's endpoint")

    def _encode_body(self, w: Writer) -> None:
        w.raw(self.request_id)
        w.u8(self.tx_type.bit)
        w.u8(len(self.keys))
        for key in self.keys:
            w.raw(key)
        w.u8(len(self.messages))
        for msg in self.messages:
            w.raw(msg)
        w.var16(self.payload)
        w.var16(self.metadata.encode("utf-8"))
        flags = (FLAG_ENDPOINT if self.endpoint is not None else 0) \
            | (FLAG_PAYLOAD_REF if self.payload_ref is not None else 0)
        w.u8(flags)
        if self.endpoint is not None:
            write_endpoint(w, self.endpoint)
        if self.payload_ref is not None:
            w.raw(self.payload_ref.digest)
            w.u32(self.payload_ref.length)

    @classmethod
    def _decode_body(cls, r: Reader) -> dict:
        request_id = r.take(REQUEST_ID_LEN, "request id")
        kind = code_to_tx_type(r.u8("tx type"))
        n_keys = r.u8("key count")
        if not 1 <= n_keys <= C.MAX_REQUEST_KEYS:
            raise InvalidField(f"a request names 1..{C.MAX_REQUEST_KEYS} keys")
        keys = tuple(r.take(33, "participant key") for _ in range(n_keys))
        n_msgs = r.u8("message count")
        if not 1 <= n_msgs <= C.MAX_REQUEST_MESSAGES:
            raise InvalidField(f"a request carries 1..{C.MAX_REQUEST_MESSAGES} messages")
        messages = tuple(r.take(C.MESSAGE_LEN, "message") for _ in range(n_msgs))
        payload = r.var16("payload", C.MAX_REQUEST_PAYLOAD_BYTES)
        metadata = decode_text(r.var16("metadata", C.MAX_REQUEST_METADATA_BYTES),
                               C.MAX_REQUEST_METADATA_BYTES, "metadata", multiline=True)
        flags = r.u8("endpoint flag")
        if flags & ~(FLAG_ENDPOINT | FLAG_PAYLOAD_REF):
            raise InvalidField("unknown bits in the endpoint/payload flags")
        endpoint = None
        if flags & FLAG_ENDPOINT:
            endpoint = read_endpoint(r)
        payload_ref = None
        if flags & FLAG_PAYLOAD_REF:
            payload_ref = PayloadRef(r.take(32, "payload digest"), r.u32("payload length"))
        return dict(request_id=request_id, tx_type=kind, keys=keys, messages=messages,
                    payload=payload, metadata=metadata, endpoint=endpoint,
                    payload_ref=payload_ref)


def _tx(kind: "TxType | str") -> TxType:
    return tx_type(kind)
