"""Discovery: find and watch signers, find signing requests addressed to a key.

Ranking of ``find_signers`` (deterministic, documented in docs/records-and-dht.md):
higher self-reported reputation first, then lower fee per signature, then
shorter typical response time, then the lower x-only key as the final tie-break
so every searcher that sees the same set shows the same order.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable

from ..records import (Advertisement, SigningRequest, TxType, Withdrawal, topic_for_requests,
                       topic_for_type)
from ..records import tx_type as parse_tx_type
from .node import DhtNode

log = logging.getLogger(__name__)

SIGNER_DISCOVERED = "signer:discovered"
SIGNER_ADVERTISED = "signer:advertised"
SIGNER_WITHDRAWN = "signer:withdrawn"
EVENTS = (SIGNER_ADVERTISED, SIGNER_DISCOVERED, SIGNER_WITHDRAWN)


def rank_key(ad: Advertisement) -> tuple:
    return (-ad.reputation, ad.fee_per_signature_sat, ad.response_time_s, ad.owner_xonly)


class Discovery:
    """Signer discovery over a started ``DhtNode``.

    Events are delivered to callbacks registered with ``on`` as keyword
    arguments (``advertisement=...``, ``tx_type=...``), and also forwarded to an
    optional external ``emitter`` with an ``emit(event, **kwargs)`` method (the
    coordinator's event hub), so subscribers there see them too.
    """

    def __init__(self, node: DhtNode, emitter: Any = None) -> None:
        self.node = node
        self.emitter = emitter
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
        stored = await self.node.publish(ad, also_topics=dropped)
        self.emit(SIGNER_ADVERTISED, advertisement=ad, stored=stored)
        return stored

    async def withdraw(self, withdrawal: Withdrawal) -> int:
        stored = await self.node.publish(withdrawal)
        self.emit(SIGNER_WITHDRAWN, owner=withdrawal.owner, withdrawal=withdrawal)
        return stored

    async def find_signers(self, tx_type: "TxType | str", amount: int | None = None,
                           min_reputation: int | None = None,
                           max_results: int | None = None) -> list[Advertisement]:
        """Live advertisements accepting ``tx_type`` (and ``amount`` within their range,
        reputation >= ``min_reputation``), best first, at most ``max_results``."""
        kind = parse_tx_type(tx_type)
        if max_results is not None and max_results < 0:
            raise ValueError("max_results must be >= 0")
        records = await self.node.lookup(topic_for_type(kind, self.node.chain_id))
        ads = [r for r in records if isinstance(r, Advertisement) and r.accepts(kind)
               and (amount is None or r.covers_amount(amount))
               and (min_reputation is None or r.reputation >= min_reputation)]
        ads.sort(key=rank_key)
        return ads if max_results is None else ads[:max_results]

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
        topic = topic_for_type(kind, self.node.chain_id)
        while True:
            try:
                records = await self.node.lookup(topic)
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
