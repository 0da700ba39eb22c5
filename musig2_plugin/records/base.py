"""The common frame of every signed record and the rule that orders versions.

Layout (all integers big-endian, fixed width)::

    version u8 | kind u8 | chain 4 | owner 33 | seq u64 | created_at_ms u64
    | expires_at_ms u64 | kind-specific body | BIP-340 signature 64

``chain`` is the chain id (``foundation/chain.py``): signed like everything else,
so a record made for one chain is refused on every other (``WrongChain``), and
read right after the kind so that refusal costs no parsing.

The signature covers every byte before it, hashed with a tag per record kind
(``tagged_hash(TAG, unsigned_bytes)``), so a signature of one kind can never be
replayed as another. The owner is the 33-byte compressed MuSig2 participant
key; the signature verifies under its x-only form (bytes 1..33). The parity
byte is inside the signed bytes, so it is authenticated; and since whoever
holds the secret for x also holds the one for the other parity, claiming the
"wrong" parity gains nothing. Slots (one record per owner) are keyed by the
x-only key so one owner cannot occupy two slots by flipping parity.
"""
from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from ..foundation import constants as C
from ..foundation.chain import Chain, chain_id_of, chain_label
from ..crypto import plain_pubkey, schnorr_sign, schnorr_verify, tagged_hash
from .codec import Reader, Writer
from .errors import (ExpiredRecord, FutureRecord, InvalidField, InvalidSignature,
                     OversizedRecord, WrongChain)
from .fields import check_int, check_pubkey33

HEADER_LEN = 1 + 1 + C.CHAIN_ID_LEN + 33 + 8 + 8 + 8
OWNER_OFFSET = 2 + C.CHAIN_ID_LEN
MAX_SEQ = (1 << 64) - 1


def now_ms(now: float | None = None) -> int:
    return int((time.time() if now is None else now) * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(ABC):
    """Fields common to all records; subclasses add a body and a tag."""

    KIND: ClassVar[int] = 0
    TAG: ClassVar[str] = ""

    chain_id: bytes
    owner: bytes
    seq: int
    created_at_ms: int
    expires_at_ms: int
    signature: bytes = b""
    _encoded: bytes = field(default=b"", repr=False, compare=False)

    # -- derived views -------------------------------------------------------
    @property
    def created_at(self) -> float:
        return self.created_at_ms / 1000

    @property
    def expires_at(self) -> float:
        return self.expires_at_ms / 1000

    @property
    def owner_xonly(self) -> bytes:
        return self.owner[1:]

    @property
    @abstractmethod
    def slot(self) -> bytes:
        """Identity of the replaceable unit: a newer seq in the same slot replaces the older."""

    @abstractmethod
    def topics(self) -> tuple[bytes, ...]:
        """DHT topic keys this record is stored under."""

    def accepted_topics(self) -> tuple[bytes, ...]:
        """Topics a node may hold this record under (``topics()`` unless a kind says more)."""
        return self.topics()

    def is_expired(self, now: float | None = None) -> bool:
        return self.expires_at_ms <= now_ms(now)

    # -- encoding -------------------------------------------------------------
    @abstractmethod
    def _encode_body(self, w: Writer) -> None:
        """Append the kind-specific fields in their canonical order."""

    @abstractmethod
    def _validate_body(self) -> None:
        """Raise InvalidField unless every kind-specific field is within bounds."""

    def _validate(self) -> None:
        if not isinstance(self.chain_id, bytes) or len(self.chain_id) != C.CHAIN_ID_LEN:
            raise InvalidField(f"chain id must be {C.CHAIN_ID_LEN} bytes")
        check_pubkey33(self.owner, "owner key")
        check_int(self.seq, 0, MAX_SEQ, "seq")
        check_int(self.created_at_ms, 0, MAX_SEQ, "created_at")
        check_int(self.expires_at_ms, 0, MAX_SEQ, "expires_at")
        ttl = self.expires_at_ms - self.created_at_ms
        if not int(C.MIN_TTL_S * 1000) <= ttl <= int(C.MAX_TTL_S * 1000):
            raise InvalidField(f"lifetime {ttl} ms outside [{C.MIN_TTL_S}, {C.MAX_TTL_S}] s")
        self._validate_body()

    def unsigned_bytes(self) -> bytes:
        w = Writer()
        w.u8(C.RECORD_VERSION)
        w.u8(self.KIND)
        w.raw(self.chain_id)
        w.raw(self.owner)
        w.u64(self.seq)
        w.u64(self.created_at_ms)
        w.u64(self.expires_at_ms)
        self._encode_body(w)
        return w.getvalue()

    def sighash(self) -> bytes:
        return tagged_hash(self.TAG, self.unsigned_bytes())

    def encode(self) -> bytes:
        if not self._encoded:
            if len(self.signature) != C.SCHNORR_SIG_LEN:
                raise InvalidField("record is not signed")
            object.__setattr__(self, "_encoded", self.unsigned_bytes() + self.signature)
        return self._encoded

    def verify_signature(self) -> bool:
        return schnorr_verify(self.owner_xonly, self.sighash(), self.signature)

    # -- construction -----------------------------------------------------------
    @classmethod
    def _signed(cls, seckey: bytes, *, chain: "Chain | bytes", ttl: float, seq: int | None,
                now: float | None, **body):
        created = now_ms(now)
        record = cls(chain_id=chain_id_of(chain), owner=plain_pubkey(seckey), seq=created if seq is None else seq,
                     created_at_ms=created, expires_at_ms=created + int(ttl * 1000), **body)
        record._validate()
        signed = dataclasses.replace(record, signature=schnorr_sign(seckey, record.sighash()))
        if len(signed.encode()) > C.MAX_RECORD_BYTES:
            raise OversizedRecord(f"record of {len(signed.encode())} bytes exceeds {C.MAX_RECORD_BYTES}")
        return signed

    def renewed(self, seckey: bytes, *, ttl: float | None = None, now: float | None = None):
        """The same content re-signed with a fresh lifetime and a higher seq (for republishing)."""
        if plain_pubkey(seckey) != self.owner:
            raise InvalidField("renewing needs the owner's secret key")
        if ttl is None:
            ttl = (self.expires_at_ms - self.created_at_ms) / 1000
        created = now_ms(now)
        fresh = dataclasses.replace(self, seq=max(self.seq + 1, created), created_at_ms=created,
                                    expires_at_ms=created + int(ttl * 1000), signature=b"",
                                    _encoded=b"")
        fresh._validate()
        return dataclasses.replace(fresh, signature=schnorr_sign(seckey, fresh.sighash()))

    @classmethod
    @abstractmethod
    def _decode_body(cls, r: Reader) -> dict:
        """Read the kind-specific fields (the inverse of ``_encode_body``)."""


def check_time(record: Record, now: float | None) -> None:
    t = now_ms(now)
    if record.expires_at_ms <= t:
        raise ExpiredRecord(f"record expired {(t - record.expires_at_ms) / 1000:.1f} s ago")
    if record.created_at_ms > t + C.MAX_CLOCK_SKEW_S * 1000:
        raise FutureRecord(f"record created {(record.created_at_ms - t) / 1000:.1f} s in the future")


def check_chain(record: Record, chain: "Chain | bytes") -> None:
    if record.chain_id != chain_id_of(chain):
        raise WrongChain(f"record of chain {chain_label(record.chain_id)}, "
                         f"not of {chain_label(chain)}")


def check_signature(record: Record) -> None:
    if not record.verify_signature():
        raise InvalidSignature("signature does not verify under the owner key")


def supersedes(new: Record, old: Record) -> bool:
    """Whether ``new`` replaces ``old`` in the same slot.

    Higher seq wins. Equal seq with different content (an owner who signed two
    versions) is broken deterministically by (expires_at, encoding) so every
    node converges on the same survivor regardless of arrival order.
    """
    if new.seq != old.seq:
        return new.seq > old.seq
    return (new.expires_at_ms, new.encode()) > (old.expires_at_ms, old.encode())
