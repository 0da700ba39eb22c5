"""Admission checks the transport applies before a message reaches the session layer.

Kept apart from the socket code so each rule can be tested on its own and the
bounds (window width, block threshold, rates) come from one ``Musig2Config``.
"""
from __future__ import annotations

import time
from collections import OrderedDict

from ..foundation.config import Musig2Config
from .envelope import Envelope, PeerBlocked, ReplayedMessage, StaleMessage


class ReplayGuard:
    """Anti-replay window per (session, sender), counted in messages: each counter once.

    Senders number the messages of each session consecutively (``CounterSource``),
    so ``window`` is how many of one sender's messages in one session may overtake
    each other (they are handled concurrently) before an older one is refused. Every
    exact replay is refused whatever its age. A window of messages, not of time:
    an honest sender never puts hundreds of messages of one session in flight.
    """

    def __init__(self, window: int, max_streams: int = 16384) -> None:
        self.window = window
        self.max_streams = max_streams
        self._streams: OrderedDict[tuple[bytes, bytes], tuple[int, set[int]]] = OrderedDict()

    def check_and_record(self, session_id: bytes, sender: bytes, counter: int) -> None:
        key = (session_id, sender)
        highest, seen = self._streams.get(key, (-1, set()))
        if counter in seen or (highest >= 0 and counter <= highest - self.window):
            raise ReplayedMessage(f"counter {counter} already seen or too old")
        seen.add(counter)
        if counter > highest:
            highest = counter
            floor = highest - self.window
            if len(seen) > self.window:
                seen = {c for c in seen if c > floor}
        self._streams[key] = (highest, seen)
        self._streams.move_to_end(key)
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)

    def forget_session(self, session_id: bytes) -> None:
        for key in [k for k in self._streams if k[0] == session_id]:
            del self._streams[key]


class PeerScore:
    """Counts invalid-but-authentic messages per participant key and blocks repeat offenders.

    Only messages whose signature verified are charged to a key: charging a key
    for a forged message would let anyone get an honest peer blocked.
    """

    def __init__(self, threshold: int, duration: float, max_keys: int = 65536) -> None:
        self.threshold = threshold
        self.duration = duration
        self.max_keys = max_keys
        self._invalid: OrderedDict[bytes, int] = OrderedDict()
        self._blocked_until: dict[bytes, float] = {}

    def is_blocked(self, key: bytes, now: float | None = None) -> bool:
        until = self._blocked_until.get(key)
        if until is None:
            return False
        if (time.monotonic() if now is None else now) >= until:
            del self._blocked_until[key]
            self._invalid.pop(key, None)
            return False
        return True

    def check(self, key: bytes) -> None:
        if self.is_blocked(key):
            raise PeerBlocked("peer is blocked after repeated invalid messages")

    def charge(self, key: bytes) -> bool:
        """Record one invalid message; True when this one got the key blocked."""
        count = self._invalid.get(key, 0) + 1
        self._invalid[key] = count
        self._invalid.move_to_end(key)
        while len(self._invalid) > self.max_keys:
            self._invalid.popitem(last=False)
        if count >= self.threshold and key not in self._blocked_until:
            now = time.monotonic()
            self._blocked_until[key] = now + self.duration
            if len(self._blocked_until) > self.max_keys:
                self._prune_blocked(now)
            return True
        return False

    def _prune_blocked(self, now: float) -> None:
        """Keys are free, so the blocklist must be bounded too: expired blocks go first,
        then the oldest (a forgotten key has to earn its block again)."""
        for key in [k for k, until in self._blocked_until.items() if until <= now]:
            del self._blocked_until[key]
        while len(self._blocked_until) > self.max_keys:
            del self._blocked_until[next(iter(self._blocked_until))]

    @property
    def blocked_count(self) -> int:
        return len(self._blocked_until)

    def invalid_count(self, key: bytes) -> int:
        return self._invalid.get(key, 0)


class TokenBucket:
    """A rate limit: ``rate`` messages per second with bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def peek(self) -> bool:
        """Whether one token is available now (takes nothing)."""
        self._refill()
        return self.tokens >= 1.0

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def check_clock(env: Envelope, config: Musig2Config, now: float | None = None) -> None:
    now_ms = (time.time() if now is None else now) * 1000
    if abs(env.time_ms - now_ms) > config.max_clock_skew * 1000:
        raise StaleMessage("message timestamp outside the accepted clock skew")
