"""What a session signs and who runs it: participants, message, tweak, id, election order.

Everything here is a pure function of the signing request, so every
participant computes the same session id and the same coordinator order
without exchanging a single message.

* ``session_id = tagged_hash(SESSION_ID_TAG, request_id || sorted keys || u16 message index)``.
  The message index is our addition to the design's "hash of request id and
  sorted keys": a request may carry one message per transaction input, and each
  needs its own MuSig2 session (its own nonces).
* Coordinator election: rank every participant key by
  ``tagged_hash(COORDINATOR_RANK_TAG, session_id || key)`` (ties impossible:
  keys are distinct); the coordinator of epoch ``e`` is ``order[e mod n]``. Each
  failover moves to the next epoch. Hashing with the session id spreads the
  coordinator role over participants across sessions instead of always picking
  the smallest key.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from ..foundation import constants as C
from ..foundation.errors import Musig2Error
from ..crypto import KeyAggContext, key_sort, tagged_hash


class SpecError(Musig2Error, ValueError):
    pass


class Tweak(enum.StrEnum):
    """What the aggregate key is tweaked with before signing: one type for the session spec and
    the request payload (which carries it as one byte, :attr:`wire`).

    ``TAPROOT`` signs for the taproot output key Q (BIP-341, optionally with a script-tree merkle
    root); ``NONE`` signs for the plain aggregate key. A ``StrEnum``, so the names a caller or a
    test writes (``"taproot"``) are the same values.
    """
    NONE = "none"
    TAPROOT = "taproot"

    @property
    def wire(self) -> int:
        """The payload's byte for this tweak (0 none, 1 taproot)."""
        return _TWEAK_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> "Tweak":
        """The tweak of a payload byte; SpecError for a byte no tweak has."""
        for tweak, byte in _TWEAK_WIRE.items():
            if byte == value:
                return tweak
        raise SpecError(f"unknown tweak byte {value}")

    @classmethod
    def parse(cls, value: "Tweak | str") -> "Tweak":
        """A tweak from its name; SpecError (not ValueError from the enum) for an unknown one."""
        try:
            return cls(value)
        except ValueError:
            raise SpecError(f"unknown tweak {value!r}") from None


_TWEAK_WIRE = {Tweak.NONE: 0, Tweak.TAPROOT: 1}
TWEAK_NONE = Tweak.NONE
TWEAK_TAPROOT = Tweak.TAPROOT


def compute_session_id(request_id: bytes, participants, message_index: int = 0) -> bytes:
    return _session_id_sorted(request_id, key_sort(list(participants)), message_index)


def _session_id_sorted(request_id: bytes, sorted_keys, message_index: int) -> bytes:
    return tagged_hash(C.SESSION_ID_TAG, bytes(request_id) + b"".join(sorted_keys)
                       + message_index.to_bytes(2, "big"))


@lru_cache(maxsize=256)
def _sorted_keys(keys: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """KeySort once per key set (a request's sessions all share one; see _keyagg_for)."""
    return tuple(key_sort(list(keys)))


def election_order(session_id: bytes, participants) -> tuple[bytes, ...]:
    return tuple(sorted(participants,
                        key=lambda k: tagged_hash(C.COORDINATOR_RANK_TAG, session_id + k)))


@lru_cache(maxsize=256)
def _keyagg_for(participants: tuple[bytes, ...], tweak: Tweak,
                merkle_root: bytes | None) -> KeyAggContext:
    """One key aggregation per key set, shared by every session that uses it.

    WHY: a request carries one message per input (up to 50) over the same keys, and
    aggregating 16 keys costs about a millisecond: building its sessions one aggregation
    each let a single pushed request (anyone can push one) cost ~50 ms of the event loop.
    ``KeyAggContext`` is immutable, so sharing it is safe.
    """
    ctx = KeyAggContext.from_pubkeys(participants)
    if tweak == TWEAK_TAPROOT:
        ctx = ctx.with_taproot_tweak(merkle_root)
    return ctx


@dataclass(frozen=True, eq=False)
class SessionSpec:
    request_id: bytes
    participants: tuple[bytes, ...]        # sorted (BIP-327 KeySort)
    message: bytes                         # 32 bytes (a sighash)
    message_index: int = 0                 # which of the request's messages
    tweak: Tweak = Tweak.TAPROOT
    merkle_root: bytes | None = None
    endpoints: dict = field(default_factory=dict)   # key -> (host, port) hints

    @classmethod
    def build(cls, request_id: bytes, participants, message: bytes, *, message_index: int = 0,
              tweak: "Tweak | str" = Tweak.TAPROOT, merkle_root: bytes | None = None,
              endpoints: dict | None = None, max_signers: int = C.MAX_SIGNERS) -> "SessionSpec":
        keys = [bytes(k) for k in participants]
        if not 2 <= len(keys) <= max_signers:
            raise SpecError(f"a session has 2..{max_signers} participants, not {len(keys)}")
        if len(set(keys)) != len(keys):
            raise SpecError("participant keys must be distinct")
        if len(message) != C.MESSAGE_LEN:
            raise SpecError("the message must be 32 bytes")
        tweak = Tweak.parse(tweak)
        if merkle_root is not None and (tweak != TWEAK_TAPROOT or len(merkle_root) != 32):
            raise SpecError("a merkle root is 32 bytes and only with the taproot tweak")
        spec = cls(bytes(request_id), _sorted_keys(tuple(keys)), bytes(message), message_index,
                   tweak, merkle_root, dict(endpoints or {}))
        spec.keyagg  # validates every key (raises InvalidPublicKey naming its index)
        return spec

    @cached_property
    def session_id(self) -> bytes:
        # participants are KeySorted by build(): the same bytes compute_session_id hashes.
        return _session_id_sorted(self.request_id, self.participants, self.message_index)

    @cached_property
    def order(self) -> tuple[bytes, ...]:
        return election_order(self.session_id, self.participants)

    def coordinator(self, epoch: int) -> bytes:
        return self.order[epoch % len(self.order)]

    @cached_property
    def keyagg(self) -> KeyAggContext:
        return _keyagg_for(self.participants, self.tweak, self.merkle_root)

    @property
    def aggregate_xonly(self) -> bytes:
        """The key the final signature verifies under (the taproot output key Q)."""
        return self.keyagg.xonly()

    def signs_the_same(self, other: "SessionSpec") -> bool:
        """Same session id *and* same thing signed under the same key.

        The session id covers the request (with its messages), the keys and the message index, but
        not the tweak, which comes from the encrypted payload: two records of one creator
        with one request id could differ there. What a user approved must be what runs.
        """
        return (self.session_id == other.session_id and self.message == other.message
                and self.participants == other.participants
                and self.message_index == other.message_index
                and self.tweak == other.tweak and self.merkle_root == other.merkle_root)

    def signer_index_of(self, key: bytes) -> int:
        """The key's signer index: its position among the KeySorted participants (BIP-327)."""
        return self.participants.index(key)

    @property
    def n(self) -> int:
        return len(self.participants)
