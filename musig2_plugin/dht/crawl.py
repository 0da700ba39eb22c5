"""Iterative lookup that gathers records from every node it walks past.

It converges on the k *responsive* nodes closest to the topic, like kademlia's
crawlers, but each step is a ``find_records`` call, whose first page carries
records *and* closer contacts: one walk both finds the k closest nodes and
collects their record sets. Peers with more records than fit a datagram are
paged until done or ``max_pages``.

Unlike kademlia's round-based ``SpiderCrawl`` (each round waits for its
slowest peer), queries here run asynchronously: at most ``alpha`` are
"fresh" in flight; one unanswered for ``soft_timeout`` stops counting, so a
dead contact delays nobody. The walk ends when the k closest candidates that
have not failed all answered, or when k nodes answered and no closer contact is
left to ask, or when nothing is left to ask, at least k/2 answered and the
open queries have lingered ``LINGER`` soft timeouts; queries still pending to
(probably dead) nodes are then abandoned. After churn, a lookup costs about one soft timeout per dead
contact met instead of a full RPC timeout per round.
"""
from __future__ import annotations

import asyncio
from typing import Callable

from kademlia.node import Node

from .protocol import RecordProtocol, page_shape_ok, parse_nodes

NEW, PENDING, OK, FAILED = "new", "pending", "ok", "failed"
LINGER = 2  # soft timeouts an open query may delay the end of a walk with nothing left to ask
FEW_LINGER = 8  # ... when fewer than k/2 nodes answered (or a publishing walk has < k)


class RecordCrawl:
    def __init__(self, protocol: RecordProtocol, node: Node, peers: list[Node], ksize: int,
                 alpha: int, max_pages: int, soft_timeout: float | None = None,
                 start: "int | bytes | Callable[[], bytes]" = 0, limit: int | None = None,
                 thorough: bool = False) -> None:
        self.protocol = protocol
        self.target = node
        self.ksize = ksize
        self.alpha = alpha
        self.max_pages = max_pages
        self.start = start  # first cursor: 0, a slot to start from, or a callable (one per peer)
        self.limit = limit  # records per page asked for (None: as many as fit a datagram)
        self.thorough = thorough  # publishing: wait longer for stragglers among the closest
        self._fixed_soft = soft_timeout  # None: follow the protocol's live RTT estimate
        self._nodes: dict[bytes, Node] = {}
        self._state: dict[bytes, str] = {}
        self.found: list[bytes] = []
        self.by_peer: dict[bytes, tuple[Node, list[bytes]]] = {}
        self.responders = 0
        self._suspects: set[bytes] = set()
        self._progress: dict[bytes, float] = {}  # peer -> when its last page arrived (paging)
        self._task_peer: dict[asyncio.Task, bytes] = {}
        self._add(peers, seeds=True)

    @property
    def soft_timeout(self) -> float:
        """Read live: replies slowed by a burst raise the estimate within the same walk."""
        if self._fixed_soft is not None:
            return self._fixed_soft
        estimate = getattr(self.protocol, "soft_timeout", None)
        return estimate() if callable(estimate) else min(0.25, self.protocol._wait_timeout / 4)

    def _add(self, peers: list[Node], seeds: bool = False) -> None:
        """Contacts that recently failed to answer (``protocol.is_unresponsive``) are still
        asked, since a timeout under load does not prove death, but as *suspects*: their
        query never holds one of the ``alpha`` slots, so a dead one delays nobody, and a
        live one still counts (excluding it would make publisher and searcher disagree
        about which nodes are closest)."""
        me = self.protocol.source_node.id
        for peer in peers:
            if peer.id not in self._nodes and peer.id != me:
                self._nodes[peer.id] = peer
                self._state[peer.id] = NEW
                if not seeds and self.protocol.is_unresponsive((peer.ip, peer.port)):
                    self._suspects.add(peer.id)

    def _ordered(self) -> list[Node]:
        return sorted(self._nodes.values(), key=lambda n: n.distance_to(self.target))

    @property
    def nearest(self) -> list[Node]:
        """The k closest nodes that answered, closest first."""
        return self.answered[: self.ksize]

    @property
    def candidates(self) -> list[Node]:
        """Every node met that has not failed, closest first (answered or never asked)."""
        return [n for n in self._ordered() if self._state[n.id] != FAILED]

    @property
    def answered(self) -> list[Node]:
        """Every node that answered, closest first (publishers retry past the k closest)."""
        return [n for n in self._ordered() if self._state[n.id] == OK]

    def _finished(self) -> bool:
        alive = [n for n in self._ordered() if self._state[n.id] != FAILED]
        top = alive[: self.ksize]
        if all(self._state[n.id] == OK for n in top):
            return True
        answered = [n for n in alive if self._state[n.id] == OK]
        if len(answered) < self.ksize:
            return False
        kth = answered[self.ksize - 1].distance_to(self.target)
        return not any(self._state[n.id] == NEW and n.distance_to(self.target) < kth for n in alive)

    async def find(self) -> list[bytes]:
        loop = asyncio.get_running_loop()
        in_flight: dict[asyncio.Task, float] = {}
        while not self._finished():
            now = loop.time()
            for task, started in list(in_flight.items()):  # a peer still sending pages is alive
                progress = self._progress.get(self._task_peer.get(task))
                if progress is not None and progress > started:
                    in_flight[task] = progress
            fresh = 0
            for task, started in in_flight.items():
                if now - started < self.soft_timeout:
                    fresh += 1
                else:  # silent past the soft timeout: a suspect for every walk until it speaks
                    self.protocol.suspect(self._nodes[self._task_peer[task]])
            for peer in self._ordered():
                if fresh >= self.alpha:
                    break
                if self._state[peer.id] == NEW:
                    self._state[peer.id] = PENDING
                    task = asyncio.ensure_future(self._query(peer))
                    self._task_peer[task] = peer.id
                    if peer.id in self._suspects:
                        in_flight[task] = now - LINGER * self.soft_timeout  # asked; holds no slot, blocks no end
                    elif (peer.ip, peer.port) not in self.protocol._cookies:
                        in_flight[task] = now + self.soft_timeout  # first contact: 2 round trips
                        fresh += 1
                    else:
                        in_flight[task] = now
                        fresh += 1
            if not in_flight:
                break
            if self._only_stragglers(in_flight, now):
                break
            done, _ = await asyncio.wait(list(in_flight), timeout=self.soft_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del in_flight[task]
        for task in in_flight:  # abandoned: let them time out quietly in the background
            task.add_done_callback(_consume)
        return self.found

    def _only_stragglers(self, in_flight: dict, now: float) -> bool:
        """Nothing left to ask, enough answers, and every open query has lingered past
        ``LINGER`` soft timeouts: those peers are most likely gone, and records are held
        by k nodes, so waiting a full RPC timeout for them buys almost nothing."""
        if any(state == NEW for state in self._state.values()):
            return False
        if self.responders < 1:
            return False
        # with fewer than k/2 answers (a small or freshly churned network) wait longer,
        # still in units of the measured soft timeout, never a full RPC timeout per contact
        linger = LINGER if self.responders >= max(1, self.ksize // 2) and not self.thorough \
            else FEW_LINGER
        return all(now - started >= linger * self.soft_timeout for started in in_flight.values())

    async def _query(self, peer: Node) -> None:
        start = self.start() if callable(self.start) else self.start
        ok, value = await self.protocol.call_find_records(peer, self.target, start, self.limit)
        if not ok or not page_shape_ok(value):
            self._state[peer.id] = FAILED
            return
        self._add(parse_nodes(value["nodes"]))
        records = list(value["records"])
        self._progress[peer.id] = asyncio.get_running_loop().time()
        cursor = value["next"]
        pages = 1
        while cursor is not None and pages < self.max_pages:
            ok, more = await self.protocol.call_find_records(peer, self.target, cursor, self.limit)
            if not ok or not page_shape_ok(more) or (more["next"] is not None and more["next"] <= cursor):
                break
            records.extend(more["records"])
            self._progress[peer.id] = asyncio.get_running_loop().time()
            cursor = more["next"]
            pages += 1
        self.found.extend(records)
        self.by_peer[peer.id] = (peer, records)
        self.responders += 1
        self._state[peer.id] = OK


def _consume(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
