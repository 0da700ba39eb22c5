"""A participant *process* killed (SIGKILL) between the rounds and restarted.

The restarted process has lost its secret nonce with its memory; it rejoins,
the coordinator starts a new attempt and everyone signs with fresh nonces. We
record every public nonce and partial signature that reached the coordinator
to prove that no nonce ever produced two partial signatures.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from musig2_plugin.coordinator import Musig2Node, request_key
from musig2_plugin.crypto import plain_pubkey, schnorr_verify

from session_cluster import (FAST, Recorder, WireLog, by_key, make_cluster,
                             nonce_reuse_report, stop_all, until)

HERE = os.path.dirname(os.path.abspath(__file__))


class PeerProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []

    @classmethod
    async def spawn(cls, tmp_path, name: str, spec: dict) -> "PeerProcess":
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "peer_process.py"), str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        return cls(proc)

    async def wait_for(self, ev: str, timeout: float) -> dict:
        async def read():
            while True:
                for line in self.lines:
                    if line["ev"] == ev:
                        return line
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"process ended before {ev!r}: {self.lines}")
                self.lines.append(json.loads(raw))
        return await asyncio.wait_for(read(), timeout)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("role", ["participant", "coordinator"])
async def test_process_killed_and_restarted_between_rounds(tmp_path, role):
    """``participant``: the coordinator (in-process) restarts round 1 when the victim rejoins.
    ``coordinator``: the others fail over to the next coordinator, which completes the
    signature once the victim is back."""
    if role == "participant":
        config = FAST.with_(round_timeout=10.0)       # longer than a process restart
    else:
        config = FAST.with_(round_timeout=2.0, coordinator_grace=1.0, rejoin_timeout=20.0)
    nodes = await make_cluster(3, config=config)
    z_key = os.urandom(32)
    z_pub = plain_pubkey(z_key)
    log = WireLog()
    for x in nodes:
        log.attach(x)
    recs = [Recorder(x) for x in nodes]
    procs: list[PeerProcess] = []
    try:
        keys = [x.pubkey for x in nodes] + [z_pub]
        while True:   # pick a request whose coordinator is an in-process node (we watch it)
            msg = os.urandom(32)
            record = await nodes[0].announce_signing_request(keys, [msg])
            spec = nodes[0].requests[request_key(record)].specs[0]
            if (spec.order[0] == z_pub) == (role == "coordinator"):
                break
        coord = by_key(nodes)[spec.order[0 if role == "participant" else 1]]
        peers = {x.pubkey.hex(): list(x.endpoint) for x in nodes}
        base = {"seckey": z_key.hex(), "peers": peers, "request": record.encode().hex(),
                "config": {"round_timeout": 20.0, "coordinator_grace": 5.0}}
        first = await PeerProcess.spawn(tmp_path, "z1", dict(base, mode="round1-only", rejoin=False))
        procs.append(first)
        listening = await first.wait_for("listening", 30)
        for x in nodes:     # what its advertisement would have told them
            x.add_peer(z_pub, tuple(listening["endpoint"]))
        await asyncio.gather(*(x.join_signing_request(record) for x in nodes))
        await first.wait_for("waiting-before-round2", 30)
        await first.kill()                                  # SIGKILL between the rounds
        if role == "coordinator":
            await until(lambda: all(r.of("session:failover") for r in recs), 20)
            for r in recs:
                assert r.of("session:failover")[0]["coordinator"] == coord.pubkey
        if role == "participant":   # its first nonce reached the (in-process) coordinator
            assert [s for s, a, _ in log.nonces if s == z_pub] == [z_pub]
        second = await PeerProcess.spawn(tmp_path, "z2", dict(base, mode="auto", rejoin=True))
        procs.append(second)
        final = await second.wait_for("final", 40)
        sid = spec.session_id
        sigs = await asyncio.gather(*(x.get_final_signature(sid, 20) for x in nodes))
        assert len(set(sigs)) == 1 and bytes.fromhex(final["sig"]) == sigs[0]
        assert schnorr_verify(Musig2Node.aggregate_key(keys).xonly(), msg, sigs[0])
        await second.proc.wait()
        assert second.proc.returncode == 0

        # The proof: two attempts; every public nonce differs; no nonce signed twice;
        # the killed process's first nonce never produced a partial signature.
        attempts = sorted({a for _, a, _ in log.nonces})
        assert attempts == [0, 1]
        pubnonces = [pn for _, _, pn in log.nonces]
        # (In the coordinator case the victim's first nonce never left its process.)
        assert len(pubnonces) == len(set(pubnonces)) == (8 if role == "participant" else 7)
        report = nonce_reuse_report(log)
        assert all(len(psigs) == 1 for psigs in report.values())
        if role == "participant":
            z_first = next(pn for s, a, pn in log.nonces if s == z_pub and a == 0)
            assert (z_pub, z_first) not in report
        assert sorted(s for s, a, _ in log.psigs if a == 1) == sorted(keys)
        for r in recs:
            (attempt,) = r.of("session:attempt")
            assert attempt["attempt"] == 1 and attempt["coordinator"] == coord.pubkey
        assert coord.transport.refusals.get("ReplayedMessage", 0) == 0
    finally:
        for p in procs:
            await p.kill()
        await stop_all(nodes)
