"""Event delivery (on the subscriber's loop, from any thread) and the bounds object."""
from __future__ import annotations

import asyncio
import threading

import pytest

from musig2_plugin.foundation.config import DEFAULT_CONFIG, Musig2Config
from musig2_plugin.foundation.events import SEED_EVENTS, EventEmitter, UnknownEvent


def test_seed_events_are_the_fourteen():
    assert len(SEED_EVENTS) == 14 and len(set(SEED_EVENTS)) == 14


async def test_callbacks_run_on_the_subscribers_loop_even_when_emitted_from_a_thread():
    em = EventEmitter()
    loop = asyncio.get_running_loop()
    seen = []
    done = asyncio.Event()

    def cb(**kw):
        seen.append((kw, threading.get_ident(), asyncio.get_running_loop()))
        done.set()

    em.on("session:ready", cb)
    t = threading.Thread(target=em.emit, args=("session:ready",), kwargs={"session_id": b"x"})
    t.start()
    t.join()
    await asyncio.wait_for(done.wait(), 2)
    kw, ident, cb_loop = seen[0]
    assert kw == {"session_id": b"x"}
    assert ident == threading.get_ident() and cb_loop is loop


async def test_async_callbacks_wildcard_unsubscribe_and_failing_callbacks():
    em = EventEmitter()
    got, star = [], []

    async def acb(**kw):
        got.append(kw["n"])

    def boom(**kw):
        raise RuntimeError("user bug")

    em.on("round1:complete", boom)
    sub = em.on("round1:complete", acb)
    em.on("*", lambda name, **kw: star.append(name))
    em.emit("round1:complete", n=1)          # boom's exception must not reach the emitter
    await asyncio.sleep(0.05)
    sub.cancel()
    em.emit("round1:complete", n=2)
    await asyncio.sleep(0.05)
    assert got == [1] and star == ["round1:complete", "round1:complete"]


async def test_wait_for_with_predicate_and_unknown_events():
    em = EventEmitter()
    waiter = asyncio.ensure_future(em.wait_for("session:aborted", lambda **kw: kw["k"] == 2, 2))
    await asyncio.sleep(0)
    em.emit("session:aborted", k=1)
    em.emit("session:aborted", k=2)
    assert await waiter == {"k": 2}
    with pytest.raises(UnknownEvent):
        em.on("session:redy", lambda **kw: None)
    with pytest.raises(UnknownEvent):
        em.emit("nope")
    with pytest.raises(asyncio.TimeoutError):
        await em.wait_for("session:ready", timeout=0.05)


def test_config_defaults_and_validation():
    assert DEFAULT_CONFIG.block_after_invalid == 10
    assert DEFAULT_CONFIG.max_signers == 50
    assert DEFAULT_CONFIG.with_(round_timeout=1).participant_wait == 1 + DEFAULT_CONFIG.coordinator_grace
    for bad in ({"max_signers": 1}, {"round_timeout": 0}, {"block_after_invalid": -1},
                {"max_payload_bytes": 10**9}, {"max_signers": 1000}):
        with pytest.raises(ValueError):
            Musig2Config(**bad)
