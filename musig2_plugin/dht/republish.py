"""Owner-side helper: keep one's own records alive by renewing them before expiry.

A record cannot be extended by republishing the same bytes (its expiry is
signed), so the owner re-signs it with a fresh lifetime and a higher seq when
less than ``margin`` seconds of life remain. Give ``OwnRecords.current`` to
``DhtNode.start_republishing``; pick ``margin`` above the republish interval
(twice it is a good choice) so no copy ever lapses between two rounds.
"""
from __future__ import annotations

from typing import Callable

from ..records import Record


class OwnRecords:
    def __init__(self, margin: float, clock: Callable[[], float] | None = None) -> None:
        import time

        self.margin = margin
        self.clock = clock or time.time
        self._items: dict[bytes, tuple[bytes, Record, float]] = {}

    def put(self, seckey: bytes, record: Record, ttl: float | None = None) -> None:
        """Own ``record`` (replacing the one in its slot, e.g. an ad by its withdrawal)."""
        life = ttl if ttl is not None else (record.expires_at_ms - record.created_at_ms) / 1000
        self._items[record.slot] = (seckey, record, life)

    def remove(self, record: Record) -> None:
        self._items.pop(record.slot, None)

    def current(self) -> list[Record]:
        now = self.clock()
        out = []
        for slot, (seckey, record, life) in list(self._items.items()):
            if record.expires_at - now < self.margin:
                record = record.renewed(seckey, ttl=life, now=now)
                self._items[slot] = (seckey, record, life)
            out.append(record)
        return out
