"""The one endpoint type of every layer: where a node is reached (direct, relay or onion).

Why in the foundations: records sign it, the transport connects to it, sessions carry it in
JOINs, the coordinator keeps an address book of it; records and transport are sibling layers,
so the type they share lives below both. ``records`` re-exports it (``records.Endpoint``) and
turns :class:`InvalidEndpoint` into its own ``InvalidField`` where a record is decoded.
"""
from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

from .errors import Musig2Error


class InvalidEndpoint(Musig2Error, ValueError):
    """A host, port, kind or relay key that does not make an endpoint; the message says which."""


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
        from .constants import MAX_HOST_BYTES

        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 1 <= self.port <= 65535:
            raise InvalidEndpoint(f"endpoint port {self.port!r} is outside 1..65535")
        try:
            object.__setattr__(self, "kind", Reach(self.kind))
        except ValueError:
            raise InvalidEndpoint(f"unknown endpoint kind {self.kind!r}") from None
        if self.kind is Reach.RELAY:
            if not isinstance(self.relay_key, (bytes, bytearray)) or len(self.relay_key) != 33 \
                    or self.relay_key[0] not in (2, 3):
                raise InvalidEndpoint("a relay endpoint needs the relay's 33-byte key")
            object.__setattr__(self, "relay_key", bytes(self.relay_key))
        elif self.relay_key is not None:
            raise InvalidEndpoint("only a relay endpoint carries a relay key")
        if not isinstance(self.host, str) or not self.host or len(self.host) > MAX_HOST_BYTES:
            raise InvalidEndpoint("endpoint host must be a non-empty string")
        if not self.host.isascii():
            raise InvalidEndpoint("endpoint host must be ASCII")
        if self.kind is Reach.ONION and not self.host.endswith(".onion"):
            raise InvalidEndpoint("an onion endpoint's host must end in .onion")
        try:
            ipaddress.ip_address(self.host)
            return
        except ValueError:
            pass
        labels = self.host.split(".")
        if not all(_HOST_LABEL.match(label) for label in labels):
            raise InvalidEndpoint(f"endpoint host {self.host!r} is neither an IP address nor a hostname")

    @classmethod
    def of(cls, value: "Endpoint | tuple[str, int] | list") -> "Endpoint":
        """An Endpoint from an Endpoint or a ``(host, port)`` pair (a direct endpoint)."""
        if isinstance(value, Endpoint):
            return value
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        raise InvalidEndpoint(f"not an endpoint: {value!r}")

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
            raise InvalidEndpoint("endpoint must be [host, port(, kind(, relay key))]")
        if len(v) == 2:
            return cls(v[0], v[1])
        names = {"direct": Reach.DIRECT, "relay": Reach.RELAY, "onion": Reach.ONION}
        if not isinstance(v[2], str) or v[2] not in names:
            raise InvalidEndpoint("unknown endpoint kind")
        kind = names[v[2]]
        if kind is Reach.RELAY:
            if len(v) != 4 or not isinstance(v[3], str) or len(v[3]) != 66:
                raise InvalidEndpoint("a relay endpoint needs the relay's key")
            try:
                key = bytes.fromhex(v[3])
            except ValueError:
                raise InvalidEndpoint("relay key is not hex") from None
            return cls(v[0], v[1], kind, key)
        if len(v) != 3:
            raise InvalidEndpoint("only a relay endpoint carries a key")
        return cls(v[0], v[1], kind)
