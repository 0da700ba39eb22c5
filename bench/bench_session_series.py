#!/usr/bin/env python3
"""Consecutive n-of-n sessions between the same n processes: failures, median and p95.

    python bench/bench_session_series.py [--n 10] [--requests 100] [--timeout 30]

Starts n participants, each in its own OS process (bench/session_worker.py, real
aiorpcx servers on 127.0.0.1, no DHT: endpoints are exchanged up front, as after
discovery). The first one announces ``--requests`` one-input requests one after the
other; every participant joins each as soon as it reaches it. For each request the time
is from just before ``announce`` to the moment the last process holds the verified
signature (wall clock, shared by the processes). A request fails if any process aborts
or if not every process has the signature within ``--timeout`` seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.key = ""
        self.endpoint: list = []

    async def read(self) -> dict:
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a worker exited")
        return json.loads(line)

    def send(self, **cmd) -> None:
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")


async def run(n: int, requests: int, timeout: float) -> None:
    workers = []
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "session_worker.py"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        workers.append(Worker(proc))
    for w in workers:
        hello = await asyncio.wait_for(w.read(), 60)
        w.key, w.endpoint = hello["key"], hello["endpoint"]
    for w in workers:
        w.send(peers={o.key: o.endpoint for o in workers if o is not w})
    events: asyncio.Queue = asyncio.Queue()

    async def pump(w: Worker) -> None:
        while True:
            try:
                await events.put(await w.read())
            except RuntimeError:
                return

    pumps = [asyncio.ensure_future(pump(w)) for w in workers]
    times, failures, aborts = [], 0, []
    keys = [w.key for w in workers]
    await asyncio.sleep(0.5)
    try:
        for _ in range(requests):
            workers[0].send(announce=keys)
            t0, rid, finals = None, None, []
            early: list[dict] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(finals) < n:
                try:
                    ev = await asyncio.wait_for(events.get(), max(0.01, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                if ev["ev"] == "announced":
                    t0, rid = ev["t"], ev["rid"]
                    finals += [e["t"] for e in early if e["rid"] == rid and e["ev"] == "final"]
                    aborts += [e for e in early if e["rid"] == rid and e["ev"] == "aborted"]
                elif rid is None:
                    early.append(ev)
                elif ev.get("rid") == rid and ev["ev"] == "final":
                    finals.append(ev["t"])
                elif ev.get("rid") == rid and ev["ev"] == "aborted":
                    aborts.append(ev)
                    break
            if len(finals) == n and t0 is not None:
                times.append(max(finals) - t0)
            else:
                failures += 1
    finally:
        for w in workers:
            w.send(stop=True)
        await asyncio.gather(*(asyncio.wait_for(w.proc.wait(), 10) for w in workers),
                             return_exceptions=True)
        for p in pumps:
            p.cancel()
    ms = sorted(t * 1000 for t in times)
    p95 = ms[max(0, int(round(0.95 * len(ms))) - 1)] if ms else float("nan")
    median = statistics.median(ms) if ms else float("nan")
    print(f"n={n}, {requests} consecutive requests in {n} processes: {failures} failures, "
          f"{len(aborts)} aborts; request -> last final signature median {median:.1f} ms, "
          f"p95 {p95:.1f} ms (p95/median {p95 / median:.2f}), min {ms[0]:.1f}, "
          f"max {ms[-1]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    asyncio.run(run(args.n, args.requests, args.timeout))


if __name__ == "__main__":
    main()
