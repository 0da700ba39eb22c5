"""DhtNode: a kademlia node that publishes and looks up signed records.

Built on ``kademlia.network.Server`` for routing (bootstrap, node lookups,
bucket refresh) with our ``RecordProtocol`` and an always-empty legacy
storage; records live in a ``RecordStore``. ``publish`` stores a record at
the k closest nodes of each of its topics; ``lookup`` walks towards a topic
gathering every record set on the way and merges them (newest per slot).
Owners keep records alive with ``start_republishing``.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections import Counter
from typing import Awaitable, Callable, Iterable, Union

from kademlia.network import Server
from kademlia.node import Node

from ..foundation import constants as C
from ..foundation.chain import Chain, chain_id_of
from ..records import Record, RecordError, decode_record, peek_slot, supersedes
from .config import DhtConfig
from .crawl import LINGER, RecordCrawl
from .peers import PeersFile
from .protocol import RecordProtocol, RefusingStorage, source_group
from .store import ACCEPTED, RecordStore, refusal

log = logging.getLogger(__name__)

# Refusals that say "not here" rather than "never": the publisher tries further nodes.
RETRY_ELSEWHERE = frozenset(refusal(r) for r in ("topic_full", "store_full", "source_quota",
                                                 "rate_limited"))


class PublishResult(int):
    """How many stores were accepted (an ``int``, as ``publish`` always returned), plus
    ``refused``: {status: count} of the stores peers refused or never answered
    ("timeout"), and ``retried``: stores sent past the k closest after a refusal.
    The publisher sees a full shard or a quota instead of a silent zero."""

    refused: dict
    retried: int

    def __new__(cls, stored: int, refused: dict | None = None, retried: int = 0) -> "PublishResult":
        obj = super().__new__(cls, stored)
        obj.refused = dict(refused or {})
        obj.retried = retried
        return obj

    @property
    def stored(self) -> int:
        return int(self)

    def __add__(self, other):  # summing per-topic results keeps the refusals
        if not isinstance(other, PublishResult):
            return int(self) + other
        refused = Counter(self.refused)
        refused.update(other.refused)
        return PublishResult(int(self) + int(other), refused, self.retried + other.retried)

    __radd__ = __add__


RecordsGetter = Callable[[], Union[Iterable[Record], Awaitable[Iterable[Record]]]]


class _Server(Server):
    """kademlia's Server, building our protocol."""

    def __init__(self, factory, **kwargs) -> None:
        super().__init__(**kwargs)
        self._factory = factory

    def _create_protocol(self):
        return self._factory(self.node, self.storage, self.ksize)


class DhtNode:
    """A DHT node of one chain: it publishes and returns to its own lookups only that chain's
    records (another chain's record found under our topic is refused and counted as
    ``refused:lookup_WrongChain``). It routes with nodes of any chain and holds their
    records under their own chains' topics (store.py says why), so chains may share a DHT."""

    def __init__(self, config: DhtConfig | None = None, *, chain: "Chain | bytes",
                 node_id: bytes | None = None, peers_file: PeersFile | None = None) -> None:
        """``peers_file``: where good peers are remembered across restarts; a start then
        joins through them as well as through its ``bootstrap`` addresses (and takes back
        the node id it had, unless ``node_id`` is given)."""
        self.config = config or DhtConfig()
        self.chain_id = chain_id_of(chain)
        self._counters: Counter = Counter()
        self.records = RecordStore(chain=self.chain_id,
                                   max_per_topic=self.config.max_records_per_topic,
                                   max_topics=self.config.max_topics,
                                   max_total=self.config.max_total_records,
                                   max_bytes=self.config.max_store_bytes,
                                   max_per_source=self.config.max_records_per_source,
                                   group_of=lambda src: source_group(src, self.config.rate_limit_by),
                                   clock=self.config.clock, stats=self._counters)
        self.peers_file = peers_file
        remembered_id = None
        if peers_file is not None:
            peers_file.load()
            remembered_id = peers_file.node_id
        self._node_id = node_id or remembered_id or os.urandom(20)
        if peers_file is not None:
            peers_file.node_id = self._node_id
        self.server: _Server | None = None
        self.host: str | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._bootstrap_addrs: list[tuple[str, int]] = []
        self._rejoin_lock = asyncio.Lock()
        self._rejoins_done = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    bootstrap: list[tuple[str, int]] = []) -> None:  # noqa: B006 (never mutated)
        if self.server is not None:
            raise RuntimeError("node already started")

        def factory(node, storage, ksize):
            return RecordProtocol(node, storage, ksize, records=self.records, config=self.config)

        self.server = _Server(factory, ksize=self.config.ksize, alpha=self.config.alpha,
                              node_id=self._node_id, storage=RefusingStorage(self._counters))
        await self.server.listen(port, host)
        self.host, self.port = self.server.transport.get_extra_info("sockname")[:2]
        self._spawn(self._prune_loop(), "prune")
        remembered = [] if self.peers_file is None else list(self.peers_file.peers)
        if self.peers_file is not None:
            self._spawn(self._save_peers_loop(), "peers")
        protocol = self.protocol
        remembered = [a for a in remembered if len(a) == 2 and protocol.contact_ok(a[0], a[1])]
        addrs = list(dict.fromkeys([tuple(a) for a in bootstrap] + remembered))
        addrs = [a for a in addrs if a != (self.host, self.port)]
        if addrs:
            await self.bootstrap(addrs)

    async def bootstrap(self, addrs: list[tuple[str, int]]) -> int:
        """Join through known nodes; returns how many nodes the join walk found."""
        addrs = [tuple(a) for a in addrs]
        protocol = self.protocol
        bad = [a for a in addrs if len(a) != 2 or not protocol.contact_ok(a[0], a[1])]
        if bad:  # a bad address passed to sendto would close our socket
            raise ValueError(f"bootstrap addresses must be (IP literal, port): {bad[:3]}")
        for addr in addrs:
            if addr not in self._bootstrap_addrs:
                self._bootstrap_addrs.append(addr)
        del self._bootstrap_addrs[:-16]  # bounded: the most recent ones
        return len(await self._join(addrs))

    async def _join(self, addrs: list[tuple[str, int]]) -> list[Node]:
        """Ping the given addresses, then walk towards our own id (kademlia's join).

        Unlike kademlia's ``bootstrap`` (each crawl round waits a full RPC timeout for its
        slowest contact), the pings stop waiting a little after the first answers
        (``LINGER`` soft timeouts), and the walk is ``RecordCrawl``, which moves on from a
        silent contact after one adaptive soft timeout."""
        protocol = self.protocol
        me = self._node_id
        pings = {asyncio.ensure_future(protocol.ping(a, me)): a for a in addrs
                 if a != (self.host, self.port)}
        seeds: list[Node] = []
        pending = set(pings)
        loop = asyncio.get_running_loop()
        grace_until = None
        while pending:
            timeout = None if grace_until is None else max(0.0, grace_until - loop.time())
            done, pending = await asyncio.wait(pending, timeout=timeout,
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            for task in done:
                ok, value = task.result()
                if ok and isinstance(value, bytes) and value != me:
                    addr = pings[task]
                    seeds.append(Node(value, addr[0], addr[1]))
            if seeds and grace_until is None:
                grace_until = loop.time() + LINGER * protocol.soft_timeout()
        for task in pending:
            task.add_done_callback(_quiet)
        for node in seeds:  # each answered our ping: a proven round trip
            protocol.welcome_if_new(node)
        known = {n.id: n for n in seeds + protocol.neighbors(Node(me))}
        if not known:
            return []
        # a join asks wide (alpha = k): contacts handed out by others may be long gone,
        # and a newcomer has no history to tell which
        crawl = RecordCrawl(protocol, Node(me), list(known.values()), self.config.ksize,
                            max(self.config.alpha, self.config.ksize), 1)
        await crawl.find()
        return crawl.answered

    async def _rejoin(self, seen: int) -> None:
        """Our contacts all failed (we were cut off, or everyone we knew left): join
        again through the bootstrap addresses we were given and any contact left.
        Concurrent walks that all found nobody rejoin once (``seen``: rejoins done
        when the caller's walk started)."""
        async with self._rejoin_lock:
            if self._rejoins_done != seen:
                return  # another walk rejoined meanwhile
            await self._rejoin_now()
            self._rejoins_done += 1

    async def _rejoin_now(self) -> None:
        server = self._require_server()
        addrs = list(self._bootstrap_addrs)
        for bucket in server.protocol.router.buckets:
            addrs.extend((n.ip, n.port) for n in bucket.get_nodes())
        addrs = list(dict.fromkeys(a for a in addrs if a != (self.host, self.port)))
        if addrs:
            self._counters["rejoins"] += 1
            await self._join(addrs[: 2 * self.config.ksize])

    def contacts(self) -> list[tuple[str, int]]:
        """Addresses of the nodes in our routing table (they answered us), closest buckets last."""
        if self.server is None or self.server.protocol is None:
            return []
        return [(n.ip, n.port) for bucket in self.server.protocol.router.buckets
                for n in bucket.get_nodes()]

    def save_peers(self) -> None:
        """Remember the current contacts (no-op without a peers file)."""
        if self.peers_file is not None:
            contacts = self.contacts()
            if self.server is not None and self.server.protocol is not None:
                # peers that stopped cleanly (``leave``) are gone from the table, not forgotten
                contacts += [a for a in reversed(self.server.protocol.departed) if a not in contacts]
            self.peers_file.remember(contacts)
            self.peers_file.save()
            self._counters["peers_saved"] += 1

    async def _save_peers_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.peers_save_interval)
            self.save_peers()

    async def stop(self) -> None:
        if self.server is not None:
            self.save_peers()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.server is not None:
            if self.server.protocol is not None and self.server.transport is not None:
                self._counters["leave_told"] += self.server.protocol.announce_leave(C.DHT_LEAVE_NOTIFY)
            self.server.stop()
            if self.server.protocol is not None:
                self.server.protocol.cancel_outstanding()
            self.server = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def node_id(self) -> bytes:
        return self._node_id

    @property
    def contact(self) -> Node:
        """This node as a routing contact (id, host, port), for direct RPCs."""
        return Node(self._node_id, self.host, self.port)

    @property
    def protocol(self) -> RecordProtocol:
        return self._require_server().protocol

    @property
    def stats(self) -> dict:
        """Counters (stored, duplicate, refused:<reason>, published, ...) and gauges."""
        out = dict(self._counters)
        out["records"] = len(self.records)
        out["topics"] = len(self.records.topics())
        if self.server is not None and self.server.protocol is not None:
            out["contacts"] = sum(len(b) for b in self.server.protocol.router.buckets)
        return out

    def _require_server(self) -> _Server:
        if self.server is None or self.server.protocol is None:
            raise RuntimeError("node is not started")
        return self.server

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(f"dht-{name}-{self.port}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("DHT task %s died: %r", task.get_name(), task.exception())

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval)
            self.records.prune()

    # -- publishing -----------------------------------------------------------------------
    async def closest_nodes(self, topic: bytes) -> list[Node]:
        """The k responsive nodes closest to ``topic`` (an iterative walk)."""
        crawl = await self._walk(topic)
        return [] if crawl is None else crawl.nearest

    def _crawl(self, topic: bytes, start=0, max_pages: int | None = None,
               limit: int | None = None, thorough: bool = False) -> RecordCrawl | None:
        server = self._require_server()
        target = Node(topic)
        nearest = server.protocol.neighbors(target)
        if not nearest:
            return None
        # a publishing walk asks wider (3 alpha): it must reach the k closest, and the
        # contacts others hand out after churn may be long gone
        alpha = 3 * self.config.alpha if thorough else self.config.alpha
        return RecordCrawl(server.protocol, target, nearest, self.config.ksize, alpha,
                           max_pages or self.config.max_pages, start=start, limit=limit,
                           thorough=thorough)

    async def _walk(self, topic: bytes, start=0, max_pages: int | None = None,
                    limit: int | None = None, thorough: bool = False) -> RecordCrawl | None:
        """Walk towards ``topic``; if nobody answered at all, rejoin and walk once more."""
        seen = self._rejoins_done
        crawl = self._crawl(topic, start, max_pages, limit, thorough)
        if crawl is not None:
            await crawl.find()
            if crawl.responders:
                return crawl
        await self._rejoin(seen)
        crawl = self._crawl(topic, start, max_pages, limit, thorough)
        if crawl is not None:
            await crawl.find()
        return crawl

    async def publish(self, record: Record, *, also_topics: Iterable[bytes] = ()) -> PublishResult:
        """Store ``record`` at the k closest nodes of each of its topics.

        ``also_topics`` adds topics the record may be held under (``accepted_topics``),
        e.g. the topic of a transaction type an updated advertisement no longer
        accepts, so the new version replaces the old one there too. Returns how many
        stores were accepted (ours included when we are among the closest), summed
        over topics, as a ``PublishResult`` that also lists the refusals; a store
        refused as full or over a quota is retried at the next closest nodes. A record we would refuse ourselves is never sent:
        ``RecordError`` is raised instead.
        """
        data = record.encode()
        decode_record(data, chain=self.chain_id, now=self.config.clock())  # as our peers will
        topics = list(dict.fromkeys([*record.topics(), *also_topics]))
        if not set(topics) <= set(record.accepted_topics()):
            raise ValueError("also_topics must be topics this record may be stored under")
        counts = await asyncio.gather(*(self._publish_topic(t, record, data) for t in topics))
        self._counters["published"] += 1
        return sum(counts, PublishResult(0))

    async def _publish_topic(self, topic: bytes, record: Record, data: bytes) -> PublishResult:
        """Store at the k closest nodes, and at any other node seen holding another
        version of the same slot, so an update or withdrawal reaches every copy the
        walk can see (not only the k closest of the publisher's current view)."""
        server = self._require_server()
        target = Node(topic)
        # the walk reads only our slot at each node (is another version held there?)
        crawl = await self._walk(topic, start=record.slot, max_pages=1, limit=1, thorough=True)
        targets: dict[bytes, Node] = {}
        if crawl is not None:
            targets = {n.id: n for n in crawl.nearest}
            versions = {}
            for peer_id, (peer, raws) in crawl.by_peer.items():
                for raw in raws:
                    if raw != data and raw not in versions:
                        versions[raw] = peek_slot(raw)
                    if raw != data and versions[raw] == record.slot:
                        targets.setdefault(peer_id, peer)
        stored = 0
        me = server.node
        local_old = self.records.has_slot(topic, record.slot)
        closest = list(targets.values())[: self.config.ksize]
        if local_old or len(closest) < self.config.ksize or \
                me.distance_to(target) < max(n.distance_to(target) for n in closest):
            if self.records.put(topic, record, source="self") in ACCEPTED:
                stored += 1
        protocol = self.protocol
        refused: Counter = Counter()
        spare = [] if crawl is None else [n for n in crawl.candidates if n.id not in targets]
        batch, retried = list(targets.values()), 0
        while batch:
            results = await asyncio.gather(*(protocol.call_store_record(n, topic, data)
                                             for n in batch))
            again = 0
            for ok, status in results:
                if ok and status in ACCEPTED:
                    stored += 1
                    continue
                status = str(status)[:40] if ok else "timeout"
                refused[status] += 1
                self._counters["publish_" + status] += 1
                again += status in RETRY_ELSEWHERE or status == "timeout"
            # not here, maybe elsewhere: the next closest nodes the walk met
            batch, spare = spare[:again], spare[again:]
            retried += len(batch)
        return PublishResult(stored, refused, retried)

    def start_republishing(self, records_getter: RecordsGetter, interval: float = C.DHT_REPUBLISH_INTERVAL_S,
                           *, immediately: bool = True) -> asyncio.Task:
        """Every ``interval`` seconds publish whatever ``records_getter()`` returns.

        The getter (sync or async) belongs to the owner: it returns the current
        records, renewed (``record.renewed(seckey)``) when they approach expiry,
        and keeps returning a withdrawal until it expires. Cancel the returned
        task (or stop the node) to end it.
        """
        return self._spawn(self._republish_loop(records_getter, interval, immediately), "republish")

    async def _republish_loop(self, getter: RecordsGetter, interval: float, immediately: bool) -> None:
        if not immediately:
            await asyncio.sleep(interval)
        while True:
            try:
                records = getter()
                if inspect.isawaitable(records):
                    records = await records
                now = self.config.clock()
                live = [r for r in records if not r.is_expired(now)]
                await asyncio.gather(*(self.publish(r) for r in live))
                self._counters["republished"] += len(live)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("republishing failed; will retry")
            await asyncio.sleep(interval)

    # -- lookup --------------------------------------------------------------------------------
    async def lookup(self, topic: bytes, *, start=0, max_pages: int | None = None,
                     limit: int | None = None) -> list[Record]:
        """Every live record stored under ``topic`` among the nodes closest to it.

        ``start`` (a slot, or a callable giving one per peer), ``max_pages`` and ``limit``
        (records per page) read only part of a large topic: samples from random points, or
        one signer's slot (``start=slot, max_pages=1, limit=1``).

        Records from all replies are verified again here (a peer may lie) and
        merged newest-per-slot, so a withdrawal hides the advertisement it buries;
        withdrawals are included in the result. Order: by slot.
        """
        if not isinstance(topic, bytes) or len(topic) != C.TOPIC_LEN:
            raise ValueError("topic must be 20 bytes")
        local_start = start() if callable(start) else start
        first = self.records.index_of(topic, local_start) if isinstance(local_start, bytes) else local_start
        per_page = limit or 200
        raw: list[bytes] = [d for _, d in zip(range(per_page * (max_pages or 10**6)),
                                              self.records.get_encoded(topic, first))]
        crawl = await self._walk(topic, start, max_pages, limit)
        if crawl is not None:
            raw.extend(crawl.found)
        self._counters["lookups"] += 1
        return self._merge(topic, raw)

    def _merge(self, topic: bytes, raw: list[bytes]) -> list[Record]:
        now = self.config.clock()
        best: dict[bytes, Record] = {}
        for data in set(raw):
            try:
                record = decode_record(data, chain=self.chain_id, now=now)
            except RecordError as exc:
                self._counters[refusal("lookup_" + type(exc).__name__)] += 1
                continue
            if topic not in record.accepted_topics():
                self._counters[refusal("lookup_wrong_topic")] += 1
                continue
            old = best.get(record.slot)
            if old is None or supersedes(record, old):
                best[record.slot] = record
        return [best[s] for s in sorted(best)]


def _quiet(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
