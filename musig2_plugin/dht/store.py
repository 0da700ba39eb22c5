"""Multi-value validating record store: what one DHT node holds.

kademlia's own storage keeps one value per key (last writer wins), so signers
advertising under one topic would overwrite each other. Here a topic maps to a
bounded set of *slots* (one per owner key; per owner and request id for
signing requests); a slot holds the newest record by ``supersedes``. Records
are decoded and verified before they are stored, must belong to the topic they
are stored under, and expired ones are pruned. Withdrawals stay in their slot
until they expire, so a replayed older advertisement cannot come back.

Every outcome is a short status string, counted in ``stats`` and returned to
the storing peer, so refusals are observable and never raise into the node.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable, Iterator

from .. import constants as C
from ..records import Record, RecordError, decode_record, supersedes

log = logging.getLogger(__name__)

STORED = "stored"
DUPLICATE = "duplicate"
ACCEPTED = frozenset({STORED, DUPLICATE})


def refusal(name: str) -> str:
    return "refused:" + name


class RecordStore:
    def __init__(self, *, max_per_topic: int = C.DHT_MAX_RECORDS_PER_TOPIC,
                 max_topics: int = C.DHT_MAX_TOPICS,
                 max_total: int = C.DHT_MAX_TOTAL_RECORDS,
                 clock: Callable[[], float] = time.time,
                 stats: Counter | None = None) -> None:
        self.max_per_topic = max_per_topic
        self.max_topics = max_topics
        self.max_total = max_total
        self.clock = clock
        self.stats: Counter = Counter() if stats is None else stats
        self._topics: dict[bytes, dict[bytes, Record]] = {}
        self._total = 0

    # -- storing ------------------------------------------------------------------
    def put_bytes(self, topic: bytes, data: bytes, source: object = None) -> str:
        """Decode, verify and store bytes received from ``source``; returns the status."""
        if not isinstance(topic, bytes) or len(topic) != C.TOPIC_LEN:
            return self._refuse("bad_topic", source)
        try:
            record = decode_record(data, now=self.clock())
        except RecordError as exc:
            return self._refuse(type(exc).__name__, source, exc)
        return self.put(topic, record, source)

    def put(self, topic: bytes, record: Record, source: object = None) -> str:
        """Store an already verified record under ``topic``."""
        if topic not in record.topics():
            return self._refuse("wrong_topic", source)
        if record.is_expired(self.clock()):
            return self._refuse("ExpiredRecord", source)
        slots = self._topics.get(topic)
        existing = slots.get(record.slot) if slots else None
        if existing is not None:
            if existing.encode() == record.encode():
                self.stats[DUPLICATE] += 1
                return DUPLICATE
            if not supersedes(record, existing):
                return self._refuse("stale", source)
            slots[record.slot] = record
            self.stats[STORED] += 1
            return STORED
        if slots is None and len(self._topics) >= self.max_topics:
            self.prune()
            if len(self._topics) >= self.max_topics:
                return self._refuse("store_full", source)
        if slots is not None and len(slots) >= self.max_per_topic:
            self._prune_topic(topic, self.clock())
            slots = self._topics.get(topic)
            if slots is not None and len(slots) >= self.max_per_topic:
                return self._refuse("topic_full", source)
        if self._total >= self.max_total:
            self.prune()
            if self._total >= self.max_total:
                return self._refuse("store_full", source)
        self._topics.setdefault(topic, {})[record.slot] = record
        self._total += 1
        self.stats[STORED] += 1
        return STORED

    def _refuse(self, reason: str, source: object, exc: Exception | None = None) -> str:
        status = refusal(reason)
        self.stats[status] += 1
        log.info("refused record from %s: %s%s", source, reason, f" ({exc})" if exc else "")
        return status

    # -- reading --------------------------------------------------------------------
    def get(self, topic: bytes) -> list[Record]:
        """Live records of a topic, in slot order (stable, so replies can be paged)."""
        slots = self._topics.get(topic)
        if not slots:
            return []
        now = self.clock()
        return [slots[s] for s in sorted(slots) if not slots[s].is_expired(now)]

    def items(self) -> Iterator[tuple[bytes, Record]]:
        now = self.clock()
        for topic, slots in list(self._topics.items()):
            for record in list(slots.values()):
                if not record.is_expired(now):
                    yield topic, record

    def topics(self) -> list[bytes]:
        return list(self._topics)

    def __len__(self) -> int:
        return self._total

    # -- pruning --------------------------------------------------------------------
    def _prune_topic(self, topic: bytes, now: float) -> int:
        slots = self._topics[topic]
        dead = [s for s, r in slots.items() if r.is_expired(now)]
        for s in dead:
            del slots[s]
        if not slots:
            del self._topics[topic]
        self._total -= len(dead)
        return len(dead)

    def prune(self) -> int:
        now = self.clock()
        removed = sum(self._prune_topic(t, now) for t in list(self._topics))
        if removed:
            self.stats["pruned"] += removed
        return removed
