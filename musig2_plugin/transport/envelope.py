"""The signed envelope around every protocol message.

A message between participants is only worth acting on if we know who sent it,
for which session, what kind of message it is and that we have not seen it
before. So the sender signs (BIP-340, tagged hash) one fixed binary layout that
binds all four: the session id, the message type, its participant key and a
per-sender counter, plus a timestamp for the clock-skew check. Replaying a
message, moving it to another session or relabelling its type each break the
signature or trip the replay window.

Layout (big-endian)::

    version u8 | type u8 | chain 4 | session_id 32 | sender 33 | counter u64 |
    time_ms u64 | body_len u32 | body | signature 64

``chain`` is the chain id (``foundation/chain.py``), inside the signed bytes: a
message for another chain's session is refused as ``WrongChainMessage`` (before
its signature is even checked) and cannot be relabelled without the sender's key.
"""
from __future__ import annotations

import enum
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..foundation import constants as C
from ..foundation.chain import Chain, chain_id_of, chain_label
from ..foundation.errors import Musig2Error
from ..crypto import schnorr_sign, schnorr_verify, tagged_hash

_HEADER = struct.Struct(f">BB{C.CHAIN_ID_LEN}s32s33sQQI")
SIG_LEN = C.SCHNORR_SIG_LEN
MIN_ENVELOPE_LEN = _HEADER.size + SIG_LEN


class MsgType(enum.IntEnum):
    """Protocol message types (the session layer gives them meaning)."""
    JOIN = 1        # participant -> coordinator (or all, on a rejoin after a restart)
    READY = 2       # coordinator -> all: every participant joined; start an attempt
    NONCE = 3       # participant -> coordinator: public nonce of this attempt
    NONCES = 4      # coordinator -> all: every public nonce and their aggregate
    PSIG = 5        # participant -> coordinator: partial signature of this attempt
    FINAL = 6       # coordinator -> all: the verified final signature
    ABORT = 7       # coordinator -> all: the session ends; culprits named
    FETCH = 8       # participant -> request creator: a chunk of a committed payload
                    # (session_id = the request's key; only on RPC_PAYLOAD, never RPC_MESSAGE)


class EnvelopeError(Musig2Error, ValueError):
    """A message refused by the transport; ``authentic`` says whether its signature held."""
    authentic = False


class MalformedEnvelope(EnvelopeError):
    pass


class BadSignature(EnvelopeError):
    pass


class WrongChainMessage(EnvelopeError):
    """A message of another chain (its sender runs a node of another network)."""


class AuthenticRefusal(EnvelopeError):
    """Correctly signed, yet refused: counted against the sender's key."""
    authentic = True


class ReplayedMessage(AuthenticRefusal):
    pass


class StaleMessage(AuthenticRefusal):
    """Timestamp outside the accepted clock skew."""


class NotAParticipant(AuthenticRefusal):
    pass


class PeerBlocked(AuthenticRefusal):
    pass


@dataclass(frozen=True)
class Envelope:
    msg_type: MsgType
    session_id: bytes
    sender: bytes            # 33-byte participant key; signature verifies under sender[1:]
    counter: int
    time_ms: int
    body: bytes
    signature: bytes = b""
    chain_id: bytes = b""    # required when signing; last so positional construction stays short

    def signed_part(self) -> bytes:
        if len(self.chain_id) != C.CHAIN_ID_LEN:
            raise ValueError(f"an envelope's chain id is {C.CHAIN_ID_LEN} bytes")
        return _HEADER.pack(C.ENVELOPE_VERSION, int(self.msg_type), self.chain_id,
                            self.session_id, self.sender, self.counter, self.time_ms,
                            len(self.body)) + self.body

    def digest(self) -> bytes:
        return tagged_hash(C.ENVELOPE_TAG, self.signed_part())

    def encode(self) -> bytes:
        if len(self.signature) != SIG_LEN:
            raise ValueError("envelope is not signed")
        return self.signed_part() + self.signature

    def verify(self) -> bool:
        return schnorr_verify(self.sender[1:], self.digest(), self.signature)

    @classmethod
    def sign(cls, seckey: bytes, *, chain: "Chain | bytes", msg_type: MsgType,
             session_id: bytes, sender: bytes, counter: int, body: bytes,
             time_ms: int | None = None) -> "Envelope":
        if len(session_id) != 32 or len(sender) != 33:
            raise ValueError("session id must be 32 bytes and sender a 33-byte key")
        if len(body) > C.MAX_ENVELOPE_BODY_BYTES:
            raise ValueError("message body too large")
        env = cls(MsgType(msg_type), bytes(session_id), bytes(sender), int(counter),
                  int(time.time() * 1000) if time_ms is None else int(time_ms), bytes(body),
                  chain_id=chain_id_of(chain))
        sig = schnorr_sign(seckey, env.digest())
        return cls(env.msg_type, env.session_id, env.sender, env.counter, env.time_ms,
                   env.body, sig, env.chain_id)

    @classmethod
    def decode(cls, data: bytes, *, chain: "Chain | bytes",
               max_body: int = C.MAX_ENVELOPE_BODY_BYTES) -> "Envelope":
        """Parse strictly a message of ``chain``; the signature is NOT checked here (see
        ``verify``). Another chain's message raises ``WrongChainMessage``."""
        if not isinstance(data, (bytes, bytearray)) or len(data) < MIN_ENVELOPE_LEN:
            raise MalformedEnvelope("envelope too short")
        version, mtype, chain_id, sid, sender, counter, time_ms, body_len = \
            _HEADER.unpack_from(data, 0)
        if version != C.ENVELOPE_VERSION:
            raise MalformedEnvelope(f"unknown envelope version {version}")
        if chain_id != chain_id_of(chain):
            raise WrongChainMessage(f"message of chain {chain_label(chain_id)}, "
                                    f"not of {chain_label(chain)}")
        try:
            msg_type = MsgType(mtype)
        except ValueError:
            raise MalformedEnvelope(f"unknown message type {mtype}") from None
        if body_len > max_body:
            raise MalformedEnvelope("message body too large")
        if len(data) != _HEADER.size + body_len + SIG_LEN:
            raise MalformedEnvelope("envelope length does not match its body length")
        if sender[0] not in (2, 3):
            raise MalformedEnvelope("sender is not a compressed public key")
        body = bytes(data[_HEADER.size:_HEADER.size + body_len])
        sig = bytes(data[_HEADER.size + body_len:])
        return cls(msg_type, sid, sender, counter, time_ms, body, sig, chain_id)


class CounterSource:
    """Per-(session, sender) message sequence numbers: consecutive, and rising across restarts.

    WHY per session and consecutive: the receiver's replay window is counted in
    messages of one (session, sender) stream (``ReplayGuard``). A node-wide counter
    taken from the wall clock made the window a span of microseconds, so two honest
    messages sealed a millisecond apart and delivered in the other order were
    refused as replays (issue 14, item 1). Each stream starts at the wall clock in
    microseconds when this process first seals for that session, then counts by one:
    a restarted process (which forgot its last counter) still starts above every
    counter its peers saw, since no stream carries a message per microsecond.
    Bounded: the least recently used streams are forgotten (a forgotten stream that
    comes back restarts from the clock, again above everything it sent before).
    """

    def __init__(self, max_streams: int = 16384) -> None:
        self.max_streams = max_streams
        self._last: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()

    def next(self, session_id: bytes = b"") -> int:
        with self._lock:
            last = self._last.get(session_id)
            value = time.time_ns() // 1000 if last is None else last + 1
            self._last[session_id] = value
            self._last.move_to_end(session_id)
            while len(self._last) > self.max_streams:
                self._last.popitem(last=False)
            return value
