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

Memory: a slot keeps only the verified encoding with its seq and expiry (what
replies and the replacement rule need), not the decoded object whose fields
would duplicate the bytes; ``get`` decodes again for local callers.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable, Iterator

from ..foundation import constants as C
from ..foundation.chain import Chain, chain_by_id, chain_id_of
from ..records import Record, RecordError, decode_record, peek_chain

log = logging.getLogger(__name__)

STORED = "stored"
DUPLICATE = "duplicate"
ACCEPTED = frozenset({STORED, DUPLICATE})


def refusal(name: str) -> str:
    return "refused:" + name


class _Entry:
    __slots__ = ("data", "seq", "expires_at_ms")

    def __init__(self, record: Record) -> None:
        self.data = record.encode()
        self.seq = record.seq
        self.expires_at_ms = record.expires_at_ms

    def expired(self, now_ms: int) -> bool:
        return self.expires_at_ms <= now_ms

    def superseded_by(self, record: Record) -> bool:
        """Same rule as ``records.supersedes``: higher seq, then (expiry, bytes)."""
        if record.seq != self.seq:
            return record.seq > self.seq
        return (record.expires_at_ms, record.encode()) > (self.expires_at_ms, self.data)


def _ms(t: float) -> int:
    return int(t * 1000)


class RecordStore:
    """What one DHT node holds, for every chain.

    Nodes of several chains may share one DHT, and a record is stored at the k nodes
    closest to its topic whatever their chain: refusing other chains here would leave a
    minority chain's records with no node to hold them. So records of every *known*
    chain are held, each only under its own chain's topics (``accepted_topics`` hashes the
    chain in); a chain id no known network has is refused (``refused:WrongChain``).
    ``chain`` is the node's own chain: other chains' records are counted
    (``held_other_chain``), and a node's lookups return only its own chain's records
    (``DhtNode._merge``: ``refused:lookup_WrongChain``).
    """

    def __init__(self, *, chain: "Chain | bytes", max_per_topic: int = C.DHT_MAX_RECORDS_PER_TOPIC,
                 max_topics: int = C.DHT_MAX_TOPICS,
                 max_total: int = C.DHT_MAX_TOTAL_RECORDS,
                 max_bytes: int = C.DHT_MAX_STORE_BYTES,
                 clock: Callable[[], float] = time.time,
                 stats: Counter | None = None) -> None:
        self.chain_id = chain_id_of(chain)
        self.max_per_topic = max_per_topic
        self.max_topics = max_topics
        self.max_total = max_total
        self.max_bytes = max_bytes
        self.clock = clock
        self.stats: Counter = Counter() if stats is None else stats
        self._topics: dict[bytes, dict[bytes, _Entry]] = {}
        self._total = 0
        self._bytes = 0
        self._last_full_prune = float("-inf")

    # -- storing ------------------------------------------------------------------
    def put_bytes(self, topic: bytes, data: bytes, source: object = None) -> str:
        """Decode, verify and store bytes received from ``source``; returns the status."""
        if not isinstance(topic, bytes) or len(topic) != C.TOPIC_LEN:
            return self._refuse("bad_topic", source)
        claimed = peek_chain(data)
        if claimed is not None and chain_by_id(claimed) is None:
            return self._refuse("WrongChain", source)        # no network we know has it
        try:
            record = decode_record(data, chain=claimed or self.chain_id, now=self.clock())
        except RecordError as exc:
            return self._refuse(type(exc).__name__, source, exc)
        return self.put(topic, record, source)

    def put(self, topic: bytes, record: Record, source: object = None) -> str:
        """Store an already verified record under ``topic``."""
        if record.chain_id != self.chain_id and chain_by_id(record.chain_id) is None:
            return self._refuse("WrongChain", source)
        if topic not in record.accepted_topics():
            return self._refuse("wrong_topic", source)
        if record.is_expired(self.clock()):
            return self._refuse("ExpiredRecord", source)
        slots = self._topics.get(topic)
        existing = slots.get(record.slot) if slots else None
        if existing is not None and existing.expired(_ms(self.clock())):
            self._prune_topic(topic, self.clock())  # a lapsed version no longer blocks anything
            slots = self._topics.get(topic)
            existing = None
        if existing is not None:
            if existing.data == record.encode():
                self.stats[DUPLICATE] += 1
                return DUPLICATE
            if not existing.superseded_by(record):
                return self._refuse("stale", source)
            grow = len(record.encode()) - len(existing.data)
            if grow > 0 and self._bytes + grow > self.max_bytes:
                return self._refuse("store_full", source)
            slots[record.slot] = _Entry(record)
            self._bytes += grow
            self.stats[STORED] += 1
            return STORED
        if slots is None and len(self._topics) >= self.max_topics:
            self._prune_when_full()
            if len(self._topics) >= self.max_topics:
                return self._refuse("store_full", source)
        if slots is not None and len(slots) >= self.max_per_topic:
            self._prune_topic(topic, self.clock())
            slots = self._topics.get(topic)
            if slots is not None and len(slots) >= self.max_per_topic:
                return self._refuse("topic_full", source)
        size = len(record.encode())
        if self._total >= self.max_total or self._bytes + size > self.max_bytes:
            self._prune_when_full()
            if self._total >= self.max_total or self._bytes + size > self.max_bytes:
                return self._refuse("store_full", source)
        self._topics.setdefault(topic, {})[record.slot] = _Entry(record)
        self._total += 1
        self._bytes += size
        self.stats[STORED] += 1
        if record.chain_id != self.chain_id:
            self.stats["held_other_chain"] += 1
        return STORED

    def _refuse(self, reason: str, source: object, exc: Exception | None = None) -> str:
        status = refusal(reason)
        self.stats[status] += 1
        log.info("refused record from %s: %s%s", source, reason, f" ({exc})" if exc else "")
        return status

    # -- reading --------------------------------------------------------------------
    def get_encoded(self, topic: bytes) -> list[bytes]:
        """Live records of a topic as stored bytes, in slot order (stable, so replies can be paged)."""
        slots = self._topics.get(topic)
        if not slots:
            return []
        now = _ms(self.clock())
        return [slots[s].data for s in sorted(slots) if not slots[s].expired(now)]

    def get(self, topic: bytes) -> list[Record]:
        """Live records of a topic, decoded (and so re-verified), in slot order."""
        out = []
        now = self.clock()
        for data in self.get_encoded(topic):
            try:
                out.append(decode_record(data, chain=peek_chain(data) or self.chain_id,
                                         now=now))
            except RecordError:  # expired between the two clock reads
                continue
        return out

    def has_slot(self, topic: bytes, slot: bytes) -> bool:
        return slot in self._topics.get(topic, {})

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(topic, record bytes) of every live record."""
        now = _ms(self.clock())
        for topic, slots in list(self._topics.items()):
            for entry in list(slots.values()):
                if not entry.expired(now):
                    yield topic, entry.data

    def topics(self) -> list[bytes]:
        return list(self._topics)

    def __len__(self) -> int:
        return self._total

    @property
    def bytes_held(self) -> int:
        return self._bytes

    # -- pruning --------------------------------------------------------------------
    def _prune_topic(self, topic: bytes, now: float) -> int:
        slots = self._topics[topic]
        now_ms = _ms(now)
        dead = [s for s, e in slots.items() if e.expired(now_ms)]
        for s in dead:
            self._bytes -= len(slots[s].data)
            del slots[s]
        if not slots:
            del self._topics[topic]
        self._total -= len(dead)
        return len(dead)

    def _prune_when_full(self) -> None:
        """A full store prunes at most once per second: pruning walks every topic,
        and doing it for each refused store would make a flood quadratic."""
        now = self.clock()
        if now - self._last_full_prune >= 1.0:
            self._last_full_prune = now
            self.prune()

    def prune(self) -> int:
        now = self.clock()
        removed = sum(self._prune_topic(t, now) for t in list(self._topics))
        if removed:
            self.stats["pruned"] += removed
        return removed
