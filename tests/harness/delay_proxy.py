"""A user-space TCP proxy that delays every byte by a fixed one-way latency.

WHY: kernel ``netem`` is not available on the test machines (DESIGN.md, section 7), yet
protocol latency must be measured in network delays, not in loopback microseconds. Put a
``DelayProxy`` in front of a listening socket and every byte that crosses it, in either
direction, arrives ``delay`` seconds after it was sent, in order, as on a link with that
latency (bandwidth is not limited). Connection set-up is delayed too: the proxy accepts at
once but opens its upstream connection ``delay`` seconds later, so a TCP connect costs one
extra one-way delay before data flows, about as a real handshake does.

Used by tests/transport (send order under slow connects) and bench/bench_session_delays.py
(the critical path in one-way delays); reusable by any harness that needs a slow link::

    async with DelayProxy(("127.0.0.1", server_port), delay=0.020) as proxy:
        ...connect to proxy.endpoint...
"""
from __future__ import annotations

import asyncio
import contextlib

Endpoint = tuple[str, int]


class DelayProxy:
    def __init__(self, target: Endpoint, delay: float, host: str = "127.0.0.1") -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.target = target
        self.delay = delay
        self.host = host
        self.endpoint: Endpoint | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: Connections accepted and chunks forwarded (either direction), for tests.
        self.connections = 0
        self.chunks = 0

    async def start(self) -> Endpoint:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.endpoint = self._server.sockets[0].getsockname()[:2]
        return self.endpoint

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> "DelayProxy":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        # Bytes the client sends before the upstream exists wait in this queue, stamped.
        up_queue: asyncio.Queue = asyncio.Queue()
        self._spawn(self._pump_in(reader, up_queue, writer))
        try:
            await asyncio.sleep(self.delay)
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            writer.close()
            return
        self._writers.add(up_writer)
        down_queue: asyncio.Queue = asyncio.Queue()
        self._spawn(self._deliver(up_queue, up_writer, writer))
        self._spawn(self._pump_in(up_reader, down_queue, up_writer))
        self._spawn(self._deliver(down_queue, writer, up_writer))

    async def _pump_in(self, reader: asyncio.StreamReader, queue: asyncio.Queue,
                       own: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    return
        except (OSError, asyncio.CancelledError):
            queue.put_nowait((loop.time(), b""))

    async def _deliver(self, queue: asyncio.Queue, writer: asyncio.StreamWriter,
                       other: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                self.chunks += 1
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            other.close()
