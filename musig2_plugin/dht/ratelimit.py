"""Per-source token buckets with bounded memory.

A peer's budget refills continuously (``rate`` per ``per`` seconds, burst up to
``rate``). The table of sources is an LRU bounded by ``max_sources`` so that an
attacker rotating addresses cannot grow our memory; a forgotten source simply
starts again with a full bucket, which is what a fresh address would get anyway.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Hashable


class RateLimiter:
    def __init__(self, rate: int, per: float, max_sources: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 1 or per <= 0 or max_sources < 1:
            raise ValueError("rate, per and max_sources must be positive")
        self.rate = rate
        self.per = per
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, source: Hashable, cost: float = 1.0) -> bool:
        now = self._clock()
        tokens, last = self._buckets.pop(source, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self.rate / self.per)
        ok = tokens >= cost
        if ok:
            tokens -= cost
        self._buckets[source] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._buckets)
