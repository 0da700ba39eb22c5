"""``decode_record``: the only way bytes from the network become a Record.

Checks run cheapest first (size, version, structure, bounds, time) and the
signature last, so garbage and floods cost little CPU. Anything unacceptable
raises a ``RecordError`` subclass; nothing else escapes.
"""
from __future__ import annotations

from ..foundation import constants as C
from .advertisement import Advertisement, Withdrawal
from ..foundation.chain import Chain, chain_id_of, chain_label
from .base import HEADER_LEN, OWNER_OFFSET, Record, check_signature, check_time
from .codec import Reader
from .errors import (InvalidField, MalformedRecord, OversizedRecord, RecordError,
                     UnknownRecordKind, UnsupportedVersion, WrongChain)
from .request import SigningRequest

RECORD_KINDS: dict[int, type[Record]] = {
    cls.KIND: cls for cls in (Advertisement, Withdrawal, SigningRequest)
}


def decode_record(data: bytes, *, chain: "Chain | bytes", now: float | None = None,
                  check_expiry: bool = True) -> Record:
    """Parse and fully verify one record of ``chain``.

    A record of any other chain raises ``WrongChain`` right after the header's
    first bytes, before its body is parsed or its signature checked.

    ``now`` (unix seconds) is the clock used for expiry and future-dating;
    ``check_expiry=False`` is for tools that inspect old records, never for
    records that will be stored or acted upon.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedRecord("record must be bytes")
    data = bytes(data)
    if len(data) > C.MAX_RECORD_BYTES:
        raise OversizedRecord(f"record of {len(data)} bytes exceeds {C.MAX_RECORD_BYTES}")
    if len(data) < HEADER_LEN + C.SCHNORR_SIG_LEN:
        if data and data[0] != C.RECORD_VERSION:
            raise UnsupportedVersion(f"record version {data[0]}")
        raise MalformedRecord("record shorter than header and signature")
    if data[0] != C.RECORD_VERSION:
        raise UnsupportedVersion(f"record version {data[0]}")
    cls = RECORD_KINDS.get(data[1])
    if cls is None:
        raise UnknownRecordKind(f"record kind {data[1]}")
    want = chain_id_of(chain)
    if data[2:OWNER_OFFSET] != want:
        raise WrongChain(f"record of chain {chain_label(data[2:OWNER_OFFSET])}, "
                         f"not of {chain_label(want)}")
    body, signature = data[:-C.SCHNORR_SIG_LEN], data[-C.SCHNORR_SIG_LEN:]
    r = Reader(body)
    r.take(2, "version and kind")
    chain_id = r.take(C.CHAIN_ID_LEN, "chain id")
    owner = r.take(33, "owner")
    seq, created, expires = r.u64("seq"), r.u64("created_at"), r.u64("expires_at")
    try:
        fields = cls._decode_body(r)
    except RecordError:
        raise
    except (ValueError, TypeError) as exc:  # defensive: a validator tripping on odd input
        raise InvalidField(str(exc)) from None
    r.finish()
    record = cls(chain_id=chain_id, owner=owner, seq=seq, created_at_ms=created, expires_at_ms=expires,
                 signature=signature, **fields)
    record._validate()
    if record.unsigned_bytes() != body:
        raise MalformedRecord("non-canonical encoding")
    if check_expiry:
        check_time(record, now)
    check_signature(record)
    object.__setattr__(record, "_encoded", data)
    return record


def peek_chain(data: bytes) -> bytes | None:
    """The chain id a record claims, read from its header without verifying anything (None
    when the bytes are not even a current-version header)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < HEADER_LEN + C.SCHNORR_SIG_LEN \
            or data[0] != C.RECORD_VERSION:
        return None
    return bytes(data[2:OWNER_OFFSET])


def peek_slot(data: bytes) -> bytes | None:
    """The slot a record claims, read from its header without verifying anything.

    Only for routing decisions where a lie costs nothing (e.g. "this peer seems to
    hold another version: send it ours too"); never for accepting a record.
    """
    if not isinstance(data, bytes) or len(data) < HEADER_LEN + C.SCHNORR_SIG_LEN or data[0] != C.RECORD_VERSION:
        return None
    kind, xonly = data[1], data[OWNER_OFFSET + 1:OWNER_OFFSET + 33]
    if kind in (Advertisement.KIND, Withdrawal.KIND):
        return b"S" + xonly
    if kind == SigningRequest.KIND and len(data) >= HEADER_LEN + 32 + C.SCHNORR_SIG_LEN:
        return b"R" + xonly + data[HEADER_LEN:HEADER_LEN + 32]
    return None
