"""Nodes in separate OS processes (real UDP between processes on 127.0.0.1)."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from dht_netutil import make_ad, network, wait_until
from musig2_plugin.dht import Discovery

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


async def spawn(boot: tuple[str, int], first: int, count: int):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "dht_proc_node.py"), f"{boot[0]}:{boot[1]}", str(first), str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT))
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    parts = line.decode().split()
    assert parts and parts[0] == "READY", line
    return proc, int(parts[1]), int(parts[2])


async def test_signers_on_other_processes_are_found():
    procs = []
    async with network(12) as nodes:
        try:
            # 3 processes hold 20 signers between them, joining through different local nodes
            plan = [(0, 7), (7, 7), (14, 6)]
            for j, (first, count) in enumerate(plan):
                proc, port, stored = await spawn(nodes[j * 3].address, first, count)
                procs.append(proc)
                assert stored >= count * 5, stored
            searcher = Discovery(nodes[-1])
            want = {make_ad(i).owner for i in range(20)}
            assert await wait_until(lambda: _found_all(searcher, want), timeout=10)
            found = await searcher.find_signers("spend")
            assert {a.owner for a in found} == want
            assert {a.endpoint.port for a in found} == {40_000 + i for i in range(20)}
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.stdin.close()
            for proc in procs:
                try:
                    await asyncio.wait_for(proc.wait(), timeout=10)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
        assert all(p.returncode == 0 for p in procs)


async def _found_all(searcher: Discovery, want: set) -> bool:
    return {a.owner for a in await searcher.find_signers("spend")} == want
