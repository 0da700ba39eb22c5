"""What dialing an endpoint may cost: hostile endpoints are tried once, then ignored.

An advertisement (or a JOIN, or a request) names an endpoint for a key, and
anyone can name anyone's address: a thousand fake signers pointing at one
victim would make every wallet that discovers them knock at the victim's door.
This guard, one per client pool, bounds that:

- A handshake failure (hello.py) is remembered. A listener that answered as a
  node of ours with another key (or chain) is ignored *for that key* for
  ``wrong_key_ignore_s``: one failed handshake per advertisement, and the node
  living there stays reachable under its own key. A listener that does not
  speak our protocol at all is ignored *for every key* for
  ``dead_endpoint_ignore_s``: however many advertisements name it, it costs one
  failed handshake.
- Failed connection attempts, handshakes left unanswered (a tarpit, or a node
  of ours under load: not remembered beyond this) and failed handshakes with
  listeners that do not speak our protocol draw from a token bucket per endpoint
  (``endpoint_attempts_per_minute``, burst ``endpoint_attempt_burst``) that
  gates every *new connection*: an endpoint that refuses connections is dialed
  at a bounded rate however many keys name it. Successful connections cost
  nothing (they are reused), and a node of ours named by fake advertisements is
  asked once per fake key over the connection we already hold (one signature
  each), so its real key stays reachable: the fakes cannot lock it out.

Memory is bounded by ``max_dial_records`` (least recently touched forgotten).
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict
from typing import Callable

from ..foundation.config import Musig2Config
from ..foundation.errors import Musig2Error

Endpoint = tuple[str, int]


class EndpointIgnored(Musig2Error):
    """We do not dial this endpoint (for this key) now; the message says why."""


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens, self.stamp = burst, now


class DialGuard:
    def __init__(self, config: Musig2Config, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._rate = config.endpoint_attempts_per_minute / 60.0
        self._buckets: OrderedDict[Endpoint, _Bucket] = OrderedDict()
        self._ignored: OrderedDict[tuple, tuple[float, str]] = OrderedDict()  # key -> (until, why)
        self.stats: Counter = Counter()

    # -- queries ------------------------------------------------------------------------
    def check(self, endpoint: Endpoint, key: bytes | None, *, connecting: bool = True) -> None:
        """Raise ``EndpointIgnored`` unless we may dial ``endpoint`` (to reach ``key``) now;
        ``connecting``: a new connection is needed (the attempt budget applies)."""
        now = self._clock()
        for entry in ((endpoint, None), (endpoint, _x(key))) if key is not None \
                else ((endpoint, None),):
            hit = self._ignored.get(entry)
            if hit is not None:
                if hit[0] > now:
                    self.stats["ignored"] += 1
                    raise EndpointIgnored(hit[1])
                del self._ignored[entry]
        if not connecting:
            return
        bucket = self._bucket(endpoint, now)
        if bucket.tokens < 1.0:
            self.stats["rate_limited"] += 1
            raise EndpointIgnored(f"{endpoint[0]}:{endpoint[1]}: too many failed attempts, "
                                  "retry later")

    # -- outcomes -----------------------------------------------------------------------
    def connect_failed(self, endpoint: Endpoint) -> None:
        self.stats["connect_failed"] += 1
        self._spend(endpoint)

    def handshake_failed(self, endpoint: Endpoint, key: bytes, why: str, *,
                         speaks_protocol: bool) -> None:
        self.stats["handshake_failed"] += 1
        now = self._clock()
        if speaks_protocol:
            until = now + self._config.wrong_key_ignore_s
            entry: tuple = (endpoint, _x(key))
        else:
            self._spend(endpoint)
            until = now + self._config.dead_endpoint_ignore_s
            entry = (endpoint, None)
        self._ignored[entry] = (until, f"{endpoint[0]}:{endpoint[1]} failed the handshake "
                                       f"({why}); ignored")
        self._ignored.move_to_end(entry)
        while len(self._ignored) > self._config.max_dial_records:
            self._ignored.popitem(last=False)

    def ignored_count(self) -> int:
        return len(self._ignored)

    # -- internals ----------------------------------------------------------------------
    def _bucket(self, endpoint: Endpoint, now: float) -> _Bucket:
        burst = float(self._config.endpoint_attempt_burst)
        bucket = self._buckets.get(endpoint)
        if bucket is None:
            bucket = self._buckets[endpoint] = _Bucket(burst, now)
            while len(self._buckets) > self._config.max_dial_records:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
            self._buckets.move_to_end(endpoint)
        return bucket

    def _spend(self, endpoint: Endpoint) -> None:
        bucket = self._bucket(endpoint, self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1.0)


def _x(key: bytes) -> bytes:
    return bytes(key[-32:])
