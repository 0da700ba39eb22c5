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


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


class Reach(enum.IntEnum):
    """How a node is reached; the kind is part of the signed endpoint.

    DIRECT: connect to host:port. RELAY: connect to the relay at host:port (whose transport key
    is ``relay_key``) and ask it to pass messages to the endpoint's owner. ONION: host is a
    ``.onion`` name reached through Tor (issue 13).
    """

    DIRECT = 0
    RELAY = 1
    ONION = 2


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """Where a node is reached: the one endpoint type of every layer (records, transport,
    sessions). Signed by its owner wherever it travels, so nobody can redirect peers.

    It also behaves as the ``(host, port)`` pair older code unpacks (``host, port = ep``),
    which is the address to *connect to*: the node itself, or its relay.
    """

    host: str
    port: int
    kind: Reach = Reach.DIRECT
    relay_key: bytes | None = None   # RELAY only: the relay's 33-byte transport key

    def __post_init__(self) -> None:
        from ..foundation.constants import MAX_HOST_BYTES

        check_int(self.port, 1, 65535, "endpoint port")
        try:
            object.__setattr__(self, "kind", Reach(self.kind))
        except ValueError:
            raise InvalidField(f"unknown endpoint kind {self.kind!r}") from None
        if self.kind is Reach.RELAY:
            if not isinstance(self.relay_key, (bytes, bytearray)) or len(self.relay_key) != 33 \
                    or self.relay_key[0] not in (2, 3):
                raise InvalidField("a relay endpoint needs the relay's 33-byte key")
            object.__setattr__(self, "relay_key", bytes(self.relay_key))
        elif self.relay_key is not None:
            raise InvalidField("only a relay endpoint carries a relay key")
        if not isinstance(self.host, str) or not self.host or len(self.host) > MAX_HOST_BYTES:
            raise InvalidField("endpoint host must be a non-empty string")
        if not self.host.isascii():
            raise InvalidField("endpoint host must be ASCII")
        if self.kind is Reach.ONION and not self.host.endswith(".onion"):
            raise InvalidField("an onion endpoint's host must end in .onion")
        try:
            ipaddress.ip_address(self.host)
            return
        except ValueError:
            pass
        labels = self.host.split(".")
        if not all(_HOST_LABEL.match(label) for label in labels):
            raise InvalidField(f"endpoint host {self.host!r} is neither an IP address nor a hostname")

    @classmethod
    def of(cls, value: "Endpoint | tuple[str, int] | list") -> "Endpoint":
        """An Endpoint from an Endpoint or a ``(host, port)`` pair (a direct endpoint)."""
        if isinstance(value, Endpoint):
            return value
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        raise InvalidField(f"not an endpoint: {value!r}")

    @property
    def address(self) -> tuple[str, int]:
        """Where to open a TCP connection: the node itself, or its relay."""
        return (self.host, self.port)

    def __iter__(self):
        return iter((self.host, self.port))

    def __eq__(self, other: object) -> bool:
        # A direct or onion endpoint equals the (host, port) pair it replaces (that pair is
        # the node's own address), so code and tests written against pairs keep working; a
        # relay endpoint's pair is the relay's address, so it equals only relay endpoints.
        if isinstance(other, Endpoint):
            return (self.host, self.port, self.kind, self.relay_key) == \
                (other.host, other.port, other.kind, other.relay_key)
        if isinstance(other, tuple) and self.kind is not Reach.RELAY:
            return other == (self.host, self.port)
        return NotImplemented

    def __hash__(self) -> int:
        if self.kind is not Reach.RELAY:
            return hash((self.host, self.port))
        return hash((self.host, self.port, self.kind, self.relay_key))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.host, self.port)[i]

    def __str__(self) -> str:
        if self.kind is Reach.RELAY:
            return f"relay {self.relay_key.hex()[:16]}@{self.host}:{self.port}"
        return f"{self.kind.name.lower()} {self.host}:{self.port}"

    def to_json(self) -> list:
        """The form inside JSON message bodies: ``[host, port]`` for a direct endpoint,
        ``[host, port, kind]`` or ``[host, port, "relay", relay_key_hex]`` otherwise."""
        if self.kind is Reach.DIRECT:
            return [self.host, self.port]
        if self.kind is Reach.RELAY:
            return [self.host, self.port, "relay", self.relay_key.hex()]
        return [self.host, self.port, self.kind.name.lower()]

    @classmethod
    def from_json(cls, v) -> "Endpoint":
        if not isinstance(v, list) or len(v) not in (2, 3, 4) or not isinstance(v[0], str) \
                or isinstance(v[1], bool) or not isinstance(v[1], int):
            raise InvalidField("endpoint must be [host, port(, kind(, relay key))]")
        if len(v) == 2:
            return cls(v[0], v[1])
        names = {"direct": Reach.DIRECT, "relay": Reach.RELAY, "onion": Reach.ONION}
        if not isinstance(v[2], str) or v[2] not in names:
            raise InvalidField("unknown endpoint kind")
        kind = names[v[2]]
        if kind is Reach.RELAY:
            if len(v) != 4 or not isinstance(v[3], str) or len(v[3]) != 66:
                raise InvalidField("a relay endpoint needs the relay's key")
            try:
                key = bytes.fromhex(v[3])
            except ValueError:
                raise InvalidField("relay key is not hex") from None
            return cls(v[0], v[1], kind, key)
        if len(v) != 3:
            raise InvalidField("only a relay endpoint carries a key")
        return cls(v[0], v[1], kind)


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
    return Endpoint(host.decode("ascii"), port, Reach(kind), relay_key)
