"""The standalone node relays by default: a real child process (``python -m musig2_plugin.node``)
serves an unreachable wallet node (its own server closed) that finds it, reserves, advertises
"through this relay" and is reached through it; its key survives a restart; ``--no-relay``
turns the role off."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.dht import DhtConfig
from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.records import Reach
from musig2_plugin.transport import MsgType, PeerRefused, PeerUnreachable

ROOT = Path(__file__).resolve().parents[2]
DHT = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)
CFG = Musig2Config(connect_timeout=1.0, request_timeout=3.0, relay_deliver_timeout=2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, data: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "musig2_plugin.node", "--chain", "regtest",
                             "--listen", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
                             "--no-default-bootstrap", "--rate-limit-by", "address", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ready(proc: subprocess.Popen) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "musig2_plugin.node: ready:" in line:
            return lines
    raise AssertionError(f"node exited: {proc.wait()} {proc.stderr.read()}")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


async def _unreachable_node() -> Musig2Node:
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    await node.start("127.0.0.1", 0, dht=False)
    node.transport._server.close()           # nobody can connect to it any more
    await node.transport._server.wait_closed()
    return node


async def test_standalone_node_relays_for_an_unreachable_wallet(tmp_path: Path) -> None:
    port = free_port()
    proc = start(port, tmp_path / "n")
    lines = await asyncio.to_thread(ready, proc)
    key_line = next(l for l in lines if "relay: listening on" in l)
    relay_key = key_line.rsplit("key ", 1)[1].strip()
    bob = await _unreachable_node()
    alice = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    await alice.start("127.0.0.1", 0, dht=False)
    try:
        summary = await bob.reach_out([("127.0.0.1", port)])
        assert summary["path"] == "relay" and not summary["verified"]
        assert summary["advertised"] == ["127.0.0.1", port, "relay", relay_key]
        assert bob.public_endpoint.kind is Reach.RELAY
        env = alice.transport.seal(MsgType.JOIN, os.urandom(32), b"{}")
        try:
            await alice.transport.send(bob.public_endpoint, env, to=bob.pubkey)
            raise AssertionError("bob holds no session: its refusal must come back")
        except PeerRefused as exc:
            assert "UnknownSession" in str(exc)        # delivered to bob, refused by bob
        # The relay is nobody's participant: pushed requests are refused, typed.
        try:
            await alice.transport.pool.request(("127.0.0.1", port), C.RPC_SIGNING_REQUEST,
                                               ["00"])
            raise AssertionError("a relay must refuse signing requests")
        except PeerRefused as exc:
            assert "holds no wallet" in str(exc)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
        assert stop(proc) == 0
    # Same key after a restart (clients' advertisements name it).
    proc = start(port, tmp_path / "n")
    try:
        lines = await asyncio.to_thread(ready, proc)
        assert any(relay_key in l for l in lines if "relay: listening on" in l)
        assert oct((tmp_path / "n" / "relay.key").stat().st_mode & 0o777) == "0o600"
    finally:
        assert stop(proc) == 0


async def test_no_relay_flag_turns_the_role_off(tmp_path: Path) -> None:
    port = free_port()
    proc = start(port, tmp_path / "n", "--no-relay")
    try:
        lines = await asyncio.to_thread(ready, proc)
        assert not any("relay: listening" in l for l in lines)
        bob = await _unreachable_node()
        try:
            assert await bob.find_relays([("127.0.0.1", port)]) == []
            summary = await bob.reach_out([("127.0.0.1", port)])
            assert summary["path"] != "relay" and summary["relays"] == []
            try:
                await bob.transport.pool.request(("127.0.0.1", port), C.RPC_RELAY_INFO, [])
                raise AssertionError("nothing listens on TCP without the relay role")
            except PeerUnreachable as exc:
                assert "cannot connect" in str(exc)
        finally:
            await bob.stop()
    finally:
        assert stop(proc) == 0
