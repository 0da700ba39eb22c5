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

Storage an address cannot buy: each record remembers the *group* of the peer
that stored it (its /24 or /48 under production keying, see ``protocol.source_group``),
each group may hold at most ``max_per_source`` slots of one topic and each
owner key at most ``max_per_owner``; when a topic is full, a record from a
group smaller than the largest one evicts that largest group's oldest entry,
so a flood from one address can only ever displace its own records, never an
honest signer's from a group of its own (diversity over first-come).

Memory: a slot keeps only the verified encoding with its seq and expiry (what
replies and the replacement rule need), not the decoded object whose fields
would duplicate the bytes; ``get`` decodes again for local callers.
"""
from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from typing import Callable, Hashable, Iterator

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
    __slots__ = ("data", "seq", "expires_at_ms", "group")

    def __init__(self, record: Record, group: Hashable) -> None:
        self.data = record.encode()
        self.seq = record.seq
        self.expires_at_ms = record.expires_at_ms
        self.group = group

    @property
    def owner(self) -> bytes:
        return self.data[3:35]  # x-only part of the owner key in the record header

    def expired(self, now_ms: int) -> bool:
        return self.expires_at_ms <= now_ms

    def superseded_by(self, record: Record) -> bool:
        """Same rule as ``records.supersedes``: higher seq, then (expiry, bytes)."""
        if record.seq != self.seq:
            return record.seq > self.seq
        return (record.expires_at_ms, record.encode()) > (self.expires_at_ms, self.data)


def _ms(t: float) -> int:
    return int(t * 1000)


class _Topic:
    """Slots of one topic plus the counters the quotas and eviction need."""

    __slots__ = ("slots", "groups", "owners", "order")

    def __init__(self) -> None:
        self.slots: dict[bytes, _Entry] = {}
        self.groups: dict[Hashable, dict[bytes, None]] = {}  # group -> its slots, oldest first
        self.owners: Counter = Counter()
        self.order: list[bytes] | None = None                 # sorted slots (cache for paging)

    def add(self, slot: bytes, entry: _Entry) -> None:
        self.slots[slot] = entry
        self.groups.setdefault(entry.group, {})[slot] = None
        self.owners[entry.owner] += 1
        self.order = None

    def remove(self, slot: bytes) -> _Entry:
        entry = self.slots.pop(slot)
        members = self.groups[entry.group]
        del members[slot]
        if not members:
            del self.groups[entry.group]
        self.owners[entry.owner] -= 1
        if self.owners[entry.owner] <= 0:
            del self.owners[entry.owner]
        self.order = None
        return entry

    def sorted_slots(self) -> list[bytes]:
        if self.order is None:
            self.order = sorted(self.slots)
        return self.order

    def group_size(self, group: Hashable) -> int:
        return len(self.groups.get(group, ()))

    def largest_group(self) -> tuple[Hashable, int]:
        group = max(self.groups, key=lambda g: len(self.groups[g]))
        return group, len(self.groups[group])


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
                 max_per_source: int | None = None,
                 max_per_owner: int = C.DHT_MAX_RECORDS_PER_OWNER,
                 group_of: Callable[[object], Hashable] = lambda source: source,
                 clock: Callable[[], float] = time.time,
                 stats: Counter | None = None) -> None:
        self.chain_id = chain_id_of(chain)
        self.max_per_topic = max_per_topic
        self.max_topics = max_topics
        self.max_total = max_total
        self.max_bytes = max_bytes
        # default: one source group may fill at most 1/8 of a topic
        self.max_per_source = max_per_source if max_per_source is not None else \
            max(1, max_per_topic // C.DHT_SOURCE_SHARE_DIVISOR)
        self.max_per_owner = max_per_owner
        self.group_of = group_of
        self.clock = clock
        self.stats: Counter = Counter() if stats is None else stats
        self._topics: dict[bytes, _Topic] = {}
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
        """Store an already verified record under ``topic``, on behalf of ``source``."""
        if record.chain_id != self.chain_id and chain_by_id(record.chain_id) is None:
            return self._refuse("WrongChain", source)
        if topic not in record.accepted_topics():
            return self._refuse("wrong_topic", source)
        if record.is_expired(self.clock()):
            return self._refuse("ExpiredRecord", source)
        group = "self" if source in (None, "self") else self.group_of(source)  # local: no quota
        entries = self._topics.get(topic)
        existing = entries.slots.get(record.slot) if entries else None
        if existing is not None and existing.expired(_ms(self.clock())):
            self._prune_topic(topic, self.clock())  # a lapsed version no longer blocks anything
            entries = self._topics.get(topic)
            existing = None
        if existing is not None:
            return self._replace(topic, entries, existing, record, group, source)
        if entries is None and len(self._topics) >= self.max_topics:
            self._prune_when_full()
            if len(self._topics) >= self.max_topics:
                return self._refuse("store_full", source)
        if entries is not None:
            if entries.owners.get(record.owner_xonly, 0) >= self.max_per_owner:
                return self._refuse("owner_quota", source)
            if group != "self" and entries.group_size(group) >= self.max_per_source:
                return self._refuse("source_quota", source)
            if len(entries.slots) >= self.max_per_topic:
                self._prune_topic(topic, self.clock())
                entries = self._topics.get(topic)
                if entries is not None and len(entries.slots) >= self.max_per_topic \
                        and not self._evict_for(topic, entries, group):
                    return self._refuse("topic_full", source)
        size = len(record.encode())
        if self._total >= self.max_total or self._bytes + size > self.max_bytes:
            self._prune_when_full()
            if self._total >= self.max_total or self._bytes + size > self.max_bytes:
                return self._refuse("store_full", source)
        entries = self._topics.get(topic)
        if entries is None:
            entries = self._topics[topic] = _Topic()
        entries.add(record.slot, _Entry(record, group))
        self._total += 1
        self._bytes += size
        self.stats[STORED] += 1
        if record.chain_id != self.chain_id:
            self.stats["held_other_chain"] += 1
        return STORED

    def _replace(self, topic: bytes, entries: _Topic, existing: _Entry, record: Record,
                 group: Hashable, source: object) -> str:
        """A newer version of a slot already held: no quota applies (the owner keeps its
        place), but the byte budget still does."""
        if existing.data == record.encode():
            self.stats[DUPLICATE] += 1
            return DUPLICATE
        if not existing.superseded_by(record):
            return self._refuse("stale", source)
        grow = len(record.encode()) - len(existing.data)
        if grow > 0 and self._bytes + grow > self.max_bytes:
            return self._refuse("store_full", source)
        entries.remove(record.slot)
        entries.add(record.slot, _Entry(record, existing.group))
        self._bytes += grow
        self.stats[STORED] += 1
        return STORED

    def _evict_for(self, topic: bytes, entries: _Topic, group: Hashable) -> bool:
        """Make room in a full topic for a record of ``group`` by evicting the oldest entry
        of the largest group, if that group is larger than ``group`` would become:
        whoever holds the most slots of a topic loses one first."""
        largest, size = entries.largest_group()
        if largest == group or size <= entries.group_size(group) + 1:
            return False
        victim = next(iter(entries.groups[largest]))
        self._bytes -= len(entries.remove(victim).data)
        self._total -= 1
        self.stats["evicted"] += 1
        return True

    def _refuse(self, reason: str, source: object, exc: Exception | None = None) -> str:
        status = refusal(reason)
        self.stats[status] += 1
        log.info("refused record from %s: %s%s", source, reason, f" ({exc})" if exc else "")
        return status

    # -- reading --------------------------------------------------------------------
    def get_encoded(self, topic: bytes, start: int = 0) -> list[bytes]:
        """Live records of a topic as stored bytes, in slot order (stable, so replies can be
        paged), from the ``start``-th slot on."""
        entries = self._topics.get(topic)
        if not entries:
            return []
        now = _ms(self.clock())
        order = entries.sorted_slots()
        return [entries.slots[s].data for s in order[start:] if not entries.slots[s].expired(now)]

    def iter_from(self, topic: bytes, start: int) -> Iterator[tuple[int, bytes]]:
        """(position in slot order, bytes) of live records from position ``start`` on."""
        entries = self._topics.get(topic)
        if not entries:
            return
        now = _ms(self.clock())
        order = entries.sorted_slots()
        for pos in range(start, len(order)):
            entry = entries.slots.get(order[pos])
            if entry is not None and not entry.expired(now):
                yield pos, entry.data

    def index_of(self, topic: bytes, slot_from: bytes) -> int:
        """Position of the first slot >= ``slot_from`` (a paging cursor that starts anywhere:
        searchers sample a shard from a random point, or read one signer's slot)."""
        entries = self._topics.get(topic)
        return 0 if not entries else bisect.bisect_left(entries.sorted_slots(), slot_from)

    def count(self, topic: bytes) -> int:
        entries = self._topics.get(topic)
        return 0 if not entries else len(entries.slots)

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
        entries = self._topics.get(topic)
        return entries is not None and slot in entries.slots

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(topic, record bytes) of every live record."""
        now = _ms(self.clock())
        for topic, entries in list(self._topics.items()):
            for entry in list(entries.slots.values()):
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
        entries = self._topics[topic]
        now_ms = _ms(now)
        dead = [s for s, e in entries.slots.items() if e.expired(now_ms)]
        for s in dead:
            self._bytes -= len(entries.remove(s).data)
        if not entries.slots:
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
