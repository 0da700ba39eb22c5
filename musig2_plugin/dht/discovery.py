"""Discovery: find and watch signers, find signing requests addressed to a key.

Signer topics are sharded by owner key (records/topics.py): ``find_signers``
with ``max_results`` samples shards in random order, each from a random slot,
until it has enough matches; without it, it sweeps every shard.

Ranking of ``find_signers`` (deterministic, documented in docs/records-and-dht.md)
uses only what the searcher can check itself, never a signer's claim:

1. the searcher's own observed history with the signer (sessions completed
   minus twice the sessions it failed), from ``history(owner)``;
2. continuity: how long this searcher has seen the key advertise (first sight in
   this ``Discovery``, or given by ``first_seen``), in doubling buckets; a key
   whose seq ever went backwards loses its continuity;
3. then lower fee per signature, shorter typical response time, lower x-only key.

The self-reported ``reputation`` field is only a filter (``min_reputation``) and
a label the picker shows as "advertised": it never orders results. Verifiable
stake is not part of the records yet (docs: remaining limits).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import random
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from ..foundation import constants as C
from ..records import (Advertisement, SigningRequest, TxType, Withdrawal, signer_topic,
                       topic_for_requests, topic_for_type)
from ..records import tx_type as parse_tx_type
from .node import DhtNode

log = logging.getLogger(__name__)

SIGNER_DISCOVERED = "signer:discovered"
SIGNER_ADVERTISED = "signer:advertised"
SIGNER_WITHDRAWN = "signer:withdrawn"
SIGNER_STORE_REFUSED = "signer:store-refused"
EVENTS = (SIGNER_ADVERTISED, SIGNER_DISCOVERED, SIGNER_WITHDRAWN, SIGNER_STORE_REFUSED)

History = Callable[[bytes], "tuple[int, int] | None"]   # owner -> (completed, failed) or None
SAMPLE_WAVE = 4           # shards sampled concurrently (more bursts past a UDP socket's buffer)
SWEEP_WAVE = 8            # shards read concurrently by a full sweep
SAMPLE_PER_NODE = 12      # records one node returns to a sampling search (k nodes: ~k x 12)
MAX_TRACKED_KEYS = 20_000  # continuity memory of one Discovery (LRU)


def observed_score(history: History | None, owner: bytes) -> int:
    if history is None:
        return 0
    seen = history(owner)
    if not seen:
        return 0
    done, failed = seen
    return int(done) - 2 * int(failed)


def continuity_bucket(first_seen: float | None, now: float) -> int:
    """0 for a key first seen now (or never), then +1 per doubling of minutes watched."""
    if first_seen is None or now <= first_seen:
        return 0
    return int(math.log2(1 + (now - first_seen) / 60))


def rank_key(ad: Advertisement, *, history: History | None = None,
             first_seen: float | None = None, now: float | None = None) -> tuple:
    """Sort key, best first: observed history, continuity, fee, response time, key.
    Nothing a signer can claim (its advertised reputation) moves it up."""
    now = time.time() if now is None else now
    return (-observed_score(history, ad.owner), -continuity_bucket(first_seen, now),
            ad.fee_per_signature_sat, ad.response_time_s, ad.owner_xonly)


class Continuity:
    """What this searcher saw of each key over time: first sight and highest seq.

    A key is "continuous" while every version seen has a seq at least the previous
    one's; a regression (two histories for one key) resets its first sight."""

    def __init__(self, clock: Callable[[], float] = time.time, limit: int = MAX_TRACKED_KEYS) -> None:
        self.clock = clock
        self.limit = limit
        self._keys: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def observe(self, ads: Iterable[Advertisement]) -> None:
        now = self.clock()
        for ad in ads:
            key = ad.owner_xonly
            first, seq = self._keys.pop(key, (now, ad.seq))
            if ad.seq < seq:
                first = now
            self._keys[key] = (first, max(seq, ad.seq))
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def first_seen(self, owner: bytes) -> float | None:
        got = self._keys.get(owner[-32:])
        return None if got is None else got[0]

    def seed(self, owner: bytes, first_seen: float, seq: int = 0) -> None:
        """Restore a first sighting remembered elsewhere (e.g. the wallet's storage)."""
        self._keys[owner[-32:]] = (first_seen, seq)


class Discovery:
    """Signer discovery over a started ``DhtNode``.

    Events are delivered to callbacks registered with ``on`` as keyword
    arguments (``advertisement=...``, ``tx_type=...``), and also forwarded to an
    optional external ``emitter`` with an ``emit(event, **kwargs)`` method (the
    coordinator's event hub), so subscribers there see them too.
    """

    def __init__(self, node: DhtNode, emitter: Any = None, *, history: History | None = None,
                 rng: random.Random | None = None) -> None:
        self.node = node
        self.emitter = emitter
        self.history = history
        self.continuity = Continuity()
        self.rng = rng or random.Random(os.urandom(16))
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}
        self._watches: set[asyncio.Task] = set()

    # -- events -----------------------------------------------------------------------------
    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Register ``callback`` for ``event``; returns a function that unregisters it."""
        if event not in EVENTS:
            raise ValueError(f"unknown discovery event {event!r}; known: {EVENTS}")
        self._callbacks.setdefault(event, []).append(callback)

        def unregister() -> None:
            callbacks = self._callbacks.get(event, [])
            if callback in callbacks:
                callbacks.remove(callback)
        return unregister

    def emit(self, event: str, **kwargs: Any) -> None:
        for cb in list(self._callbacks.get(event, ())):
            _call(cb, event, (), kwargs)
        if self.emitter is not None:
            try:
                self.emitter.emit(event, **kwargs)
            except Exception:
                log.exception("forwarding %s to the event hub failed", event)

    # -- signers ----------------------------------------------------------------------------
    async def advertise(self, ad: Advertisement, previous: Advertisement | None = None) -> int:
        """Publish ``ad``; with ``previous`` (the version it replaces), also under the topics
        of types it dropped, so searchers for those types stop finding the old version."""
        dropped = [t for t in previous.topics() if t not in ad.topics()] if previous else []
        result = await self.node.publish(ad, also_topics=dropped)
        self.emit(SIGNER_ADVERTISED, advertisement=ad, stored=int(result), refused=result.refused)
        if result.refused:
            self.emit(SIGNER_STORE_REFUSED, advertisement=ad, stored=int(result),
                      refused=result.refused, retried=result.retried)
        return result

    async def withdraw(self, withdrawal: Withdrawal) -> int:
        stored = await self.node.publish(withdrawal)
        self.emit(SIGNER_WITHDRAWN, owner=withdrawal.owner, withdrawal=withdrawal)
        return stored

    async def find_signers(self, tx_type: "TxType | str", amount: int | None = None,
                           min_reputation: int | None = None,
                           max_results: int | None = None) -> list[Advertisement]:
        """Live advertisements accepting ``tx_type`` (and ``amount`` within their range,
        advertised reputation >= ``min_reputation``), best first (``rank_key``), at most
        ``max_results``. With ``max_results``, shards are sampled in random order, each
        from a random slot, until enough match; without, every shard is read."""
        kind = parse_tx_type(tx_type)
        if max_results is not None and max_results < 0:
            raise ValueError("max_results must be >= 0")

        def wanted(r) -> bool:
            return isinstance(r, Advertisement) and r.accepts(kind) \
                and (amount is None or r.covers_amount(amount)) \
                and (min_reputation is None or r.reputation >= min_reputation)

        shards = list(range(C.SIGNER_TOPIC_SHARDS))
        self.rng.shuffle(shards)
        found: dict[bytes, Advertisement] = {}
        # sampling starts with one shard (at scale one holds far more than max_results)
        waves = [shards[:1]] + [shards[i:i + SAMPLE_WAVE] for i in range(1, len(shards), SAMPLE_WAVE)] \
            if max_results is not None else \
            [shards[i:i + SWEEP_WAVE] for i in range(0, len(shards), SWEEP_WAVE)]
        for wave in waves:
            if max_results is not None and len(found) >= max_results:
                break
            for records in await self._read_shards(kind, wave, sample=max_results is not None):
                found.update((r.slot, r) for r in records if wanted(r))
        ads = list(found.values())
        return self.rank(ads)[:max_results] if max_results is not None else self.rank(ads)

    async def _read_shards(self, kind: TxType, shards: list[int], *, sample: bool) -> list[list]:
        async def one(shard: int) -> list:
            topic = topic_for_type(kind, self.node.chain_id, shard)
            if not sample:
                return await self.node.lookup(topic)
            # each node samples from its own random point: the k holders' pages overlap little
            return await self.node.lookup(topic, start=lambda: b"S" + self.rng.randbytes(32),
                                          max_pages=1, limit=SAMPLE_PER_NODE)
        return await asyncio.gather(*(one(s) for s in shards))

    def rank(self, ads: list[Advertisement]) -> list[Advertisement]:
        """Order by ``rank_key`` after recording what we saw (continuity of each key)."""
        self.continuity.observe(ads)
        now = time.time()
        return sorted(ads, key=lambda ad: rank_key(ad, history=self.history,
                                                   first_seen=self.continuity.first_seen(ad.owner),
                                                   now=now))

    async def find_signer(self, owner: bytes, tx_type: "TxType | str") -> Advertisement | None:
        """The live advertisement of one known key for ``tx_type`` (reads only its slot of its
        shard), or None if it has none or withdrew."""
        kind = parse_tx_type(tx_type)
        xonly = bytes(owner[-32:])
        slot = b"S" + xonly
        records = await self.node.lookup(signer_topic(kind, xonly, self.node.chain_id), start=slot,
                                         max_pages=1, limit=1)
        for r in records:
            if r.slot == slot:
                return r if isinstance(r, Advertisement) and r.accepts(kind) else None
        return None

    def watch_signers(self, tx_type: "TxType | str", callback: Callable[[Advertisement], Any] | None,
                      interval: float) -> asyncio.Task:
        """Poll every ``interval`` s; for each advertisement not seen before, call
        ``callback(ad)`` and emit ``signer:discovered``. An owner seen before whose slot
        now holds a withdrawal emits ``signer:withdrawn`` (and may be discovered again
        if it advertises later). Cancel the returned task to stop watching."""
        kind = parse_tx_type(tx_type)
        task = asyncio.ensure_future(self._watch(kind, callback, interval))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        return task

    async def _watch(self, kind: TxType, callback, interval: float) -> None:
        seen: dict[bytes, Advertisement] = {}
        while True:
            try:
                records = []
                for i in range(0, C.SIGNER_TOPIC_SHARDS, SWEEP_WAVE):
                    wave = list(range(i, min(i + SWEEP_WAVE, C.SIGNER_TOPIC_SHARDS)))
                    records += [r for rs in await self._read_shards(kind, wave, sample=False) for r in rs]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("signer watch lookup failed; retrying")
                records = []
            for record in records:
                if isinstance(record, Advertisement) and record.accepts(kind) and record.slot not in seen:
                    seen[record.slot] = record
                    if callback is not None:
                        _call(callback, SIGNER_DISCOVERED, (record,), {})
                    self.emit(SIGNER_DISCOVERED, advertisement=record, tx_type=kind)
                elif isinstance(record, Withdrawal) and record.slot in seen:
                    del seen[record.slot]
                    self.emit(SIGNER_WITHDRAWN, owner=record.owner, withdrawal=record)
            await asyncio.sleep(interval)

    def stop_watching(self) -> None:
        for task in list(self._watches):
            task.cancel()

    # -- signing requests ---------------------------------------------------------------------
    async def find_requests_for(self, pubkey: bytes) -> list[SigningRequest]:
        """Live signing requests naming ``pubkey`` (33-byte or x-only), oldest first."""
        records = await self.node.lookup(topic_for_requests(pubkey, self.node.chain_id))
        found = [r for r in records if isinstance(r, SigningRequest) and r.addresses(pubkey)]
        found.sort(key=lambda r: (r.created_at_ms, r.request_id))
        return found


def _call(cb: Callable[..., Any], event: str, args: tuple, kwargs: dict) -> None:
    """Run user code without letting it break the watcher; await coroutines in the background."""
    try:
        result = cb(*args, **kwargs)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                                   or log.error("%s callback failed: %r", event, t.exception()))
    except Exception:
        log.exception("%s callback failed", event)
