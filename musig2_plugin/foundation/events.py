"""Event subscription for the coordinator API: callbacks run on the subscriber's own loop.

The network and session code run on the node's loop; a GUI or a test may
subscribe from another loop or thread. Calling a callback inline from the
protocol code would run user code in the middle of a state transition (and on
the wrong thread), so every callback is *scheduled* on the loop that was running
when it subscribed (``call_soon_threadsafe``), and an exception in user code is
logged, never propagated back into the protocol.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Musig2Error

log = logging.getLogger(__name__)

#: The seed's 14 events (exact strings, part of the public contract).
SEED_EVENTS: tuple[str, ...] = (
    "signer:advertised", "signer:discovered", "signer:withdrawn",
    "signing-request:created", "signing-request:received", "signing-request:joined",
    "session:created", "session:joined", "session:ready", "session:closed", "session:aborted",
    "round1:complete", "round2:complete", "signature:finalized",
)
#: Events we add on top of the seed's (observability of the protocol's recovery paths).
EXTRA_EVENTS: tuple[str, ...] = ("session:failover", "session:attempt",
                                  "signing-request:push-failed", "signer:store-refused")
EVENTS: frozenset[str] = frozenset(SEED_EVENTS + EXTRA_EVENTS)
WILDCARD = "*"


class UnknownEvent(Musig2Error, ValueError):
    """Subscribing to a misspelt event would silently never fire: refuse it instead."""


@dataclass(eq=False)
class Subscription:
    event: str
    callback: Callable[..., Any]
    loop: asyncio.AbstractEventLoop | None
    _emitter: "EventEmitter | None" = field(default=None, repr=False)

    def cancel(self) -> None:
        if self._emitter is not None:
            self._emitter._remove(self)
            self._emitter = None


class EventEmitter:
    """Keyword-argument events; ``"*"`` subscribers receive ``(event_name, **kwargs)``."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}

    def on(self, event: str, callback: Callable[..., Any],
           loop: asyncio.AbstractEventLoop | None = None) -> Subscription:
        """Subscribe; ``loop`` defaults to the running loop (None outside one: called inline)."""
        if event != WILDCARD and event not in EVENTS:
            raise UnknownEvent(f"unknown event {event!r}; known: {sorted(EVENTS)}")
        if not callable(callback):
            raise TypeError("callback must be callable")
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        sub = Subscription(event, callback, loop, self)
        self._subs.setdefault(event, []).append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.event, [])
        if sub in subs:
            subs.remove(sub)

    def emit(self, event: str, **kwargs: Any) -> None:
        if event not in EVENTS:
            raise UnknownEvent(event)
        for sub in list(self._subs.get(event, ())):
            self._deliver(sub, (), kwargs)
        for sub in list(self._subs.get(WILDCARD, ())):
            self._deliver(sub, (event,), kwargs)

    def _deliver(self, sub: Subscription, args: tuple, kwargs: dict) -> None:
        loop = sub.loop
        if loop is None:
            self._run(sub, args, kwargs)
            return
        if loop.is_closed():
            sub.cancel()
            return
        try:
            loop.call_soon_threadsafe(self._run, sub, args, kwargs)
        except RuntimeError:  # loop closed between the check and the call
            sub.cancel()

    @staticmethod
    def _run(sub: Subscription, args: tuple, kwargs: dict) -> None:
        try:
            result = sub.callback(*args, **kwargs)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(_log_task_error)
        except Exception:
            log.exception("event callback for %s failed", sub.event)

    async def wait_for(self, event: str, predicate: Callable[..., bool] | None = None,
                       timeout: float | None = None) -> dict[str, Any]:
        """Await the next ``event`` whose kwargs satisfy ``predicate``; returns the kwargs."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def cb(**kw: Any) -> None:
            if not fut.done() and (predicate is None or predicate(**kw)):
                fut.set_result(kw)

        sub = self.on(event, cb, loop)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            sub.cancel()


def _log_task_error(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("async event callback failed", exc_info=task.exception())
