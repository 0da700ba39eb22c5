"""Value types and validators shared by the record kinds.

The same validators run when a record is created locally and when one is
decoded from the network, so a record we would refuse from a peer can never
be produced by our own ``create`` either.
"""
from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from ..crypto import InvalidPublicKey, parse_xonly
from ..foundation.endpoint import Endpoint, InvalidEndpoint, Reach
from .errors import InvalidField


class TxType(str, enum.Enum):
    """Kinds of transaction a signer accepts; a fixed enum so topics are few and known."""

    SPEND = "spend"
    SWAP = "swap"
    COINJOIN = "coinjoin"
    CUSTODY = "custody"

    @property
    def bit(self) -> int:
        return _TX_BITS[self]


_TX_BITS = {TxType.SPEND: 1, TxType.SWAP: 2, TxType.COINJOIN: 4, TxType.CUSTODY: 8}
_BIT_TX = {bit: tx for tx, bit in _TX_BITS.items()}
ALL_TX_BITS = sum(_TX_BITS.values())


def tx_type(value: "TxType | str") -> TxType:
    try:
        return TxType(value)
    except ValueError:
        raise InvalidField(f"unknown transaction type {value!r}") from None


def tx_types_to_mask(types) -> int:
    if isinstance(types, (str, TxType)):
        types = (types,)
    mask = 0
    for t in types:
        mask |= tx_type(t).bit
    if not mask:
        raise InvalidField("at least one transaction type is required")
    return mask


def mask_to_tx_types(mask: int) -> tuple[TxType, ...]:
    if mask == 0 or mask & ~ALL_TX_BITS:
        raise InvalidField(f"transaction type mask {mask:#x} is empty or has unknown bits")
    return tuple(tx for bit, tx in sorted(_BIT_TX.items()) if mask & bit)


def code_to_tx_type(code: int) -> TxType:
    try:
        return _BIT_TX[code]
    except KeyError:
        raise InvalidField(f"unknown transaction type code {code}") from None


def check_pubkey33(key: bytes, what: str = "public key") -> bytes:
    """A compressed secp256k1 point (02/03 prefix, x on the curve)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 33 or key[0] not in (2, 3):
        raise InvalidField(f"{what} must be a 33-byte compressed key")
    try:
        parse_xonly(bytes(key[1:]))
    except InvalidPublicKey:
        raise InvalidField(f"{what} is not a point on the curve") from None
    return bytes(key)


def check_int(value: int, lo: int, hi: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidField(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def check_bytes(value: bytes, length: int | None, max_len: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise InvalidField(f"{what} must be bytes")
    if length is not None and len(value) != length:
        raise InvalidField(f"{what} must be {length} bytes")
    if len(value) > max_len:
        raise InvalidField(f"{what} longer than {max_len} bytes")
    return bytes(value)


# Invisible/control code points let a nickname impersonate another in the UI
# (bidi overrides, zero-width joiners), so text fields refuse them.
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def check_text(value: str, max_bytes: int, what: str, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidField(f"{what} must be a string")
    for ch in value:
        if multiline and ch == "\n":
            continue
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            raise InvalidField(f"{what} contains control or invisible character U+{ord(ch):04X}")
    if len(value.encode("utf-8")) > max_bytes:
        raise InvalidField(f"{what} longer than {max_bytes} UTF-8 bytes")
    return value


def decode_text(raw: bytes, max_bytes: int, what: str, *, multiline: bool = False) -> str:
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidField(f"{what} is not valid UTF-8") from None
    return check_text(text, max_bytes, what, multiline=multiline)


_TOKEN = re.compile(r"[a-z0-9][a-z0-9:._=+-]*\Z")


def check_trust_requirements(tokens, max_count: int, max_bytes: int) -> tuple[str, ...]:
    """Short lowercase ASCII policy tokens, kept sorted and unique (canonical form)."""
    if isinstance(tokens, str):
        raise InvalidField("trust requirements must be a sequence of tokens")
    out = tuple(sorted(set(tokens)))
    if len(out) > max_count:
        raise InvalidField(f"more than {max_count} trust requirements")
    for tok in out:
        if not isinstance(tok, str) or not tok or len(tok) > max_bytes or not _TOKEN.match(tok):
            raise InvalidField(f"bad trust requirement token {tok!r}")
    return out


def make_endpoint(host, port, kind: Reach = Reach.DIRECT, relay_key=None) -> Endpoint:
    """``Endpoint(...)`` whose refusal is this layer's ``InvalidField`` (records are refused
    with RecordError subclasses)."""
    try:
        return Endpoint(host, port, kind, relay_key)
    except InvalidEndpoint as exc:
        raise InvalidField(str(exc)) from None


def write_endpoint(w, ep: Endpoint) -> None:
    """Canonical bytes of an endpoint inside a signed record: kind u8 | host var8 | port u16
    (| relay key 33 for RELAY)."""
    w.u8(int(ep.kind))
    w.var8(ep.host.encode("ascii"))
    w.u16(ep.port)
    if ep.kind is Reach.RELAY:
        w.raw(ep.relay_key)


def read_endpoint(r) -> Endpoint:
    from ..foundation.constants import MAX_HOST_BYTES

    kind = r.u8("endpoint kind")
    if kind not in {k.value for k in Reach}:
        raise InvalidField(f"unknown endpoint kind {kind}")
    host = r.var8("endpoint host", MAX_HOST_BYTES)
    if not host.isascii():
        raise InvalidField("endpoint host is not ASCII")
    port = r.u16("endpoint port")
    relay_key = r.take(33, "relay key") if kind == Reach.RELAY else None
    return make_endpoint(host.decode("ascii"), port, Reach(kind), relay_key)
