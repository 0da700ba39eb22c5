"""The standalone node as its users run it: a real child process (``python -m
musig2_plugin.node``) serving as the bootstrap node of two real wallet nodes (Musig2Node:
kademlia + aiorpcx on 127.0.0.1) that then find each other; SIGTERM stops it cleanly (exit 0,
no process, the port free again, its peers remembered); bad arguments give one clear line."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.dht import DhtConfig
from musig2_plugin.foundation.chain import REGTEST

ROOT = Path(__file__).resolve().parents[2]
DHT = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_node(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "musig2_plugin.node", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, timeout: float = 20.0) -> list[str]:
    """Read stdout until the 'ready' line (the node logs to stdout); returns the lines.
    Blocking: async tests run it in a thread so their own nodes keep answering."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"node exited early: {proc.wait()} {proc.stderr.read()}")
        lines.append(line)
        if "musig2_plugin.node: ready:" in line:
            return lines
    raise AssertionError("node not ready in time: " + "".join(lines))


def stop_node(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("SIGTERM did not stop the node")
    return rc, proc.stdout.read()


async def test_serves_as_bootstrap_for_two_wallet_nodes_and_stops_cleanly(tmp_path):
    port = free_udp_port()
    data = tmp_path / "node"
    proc = start_node("--chain", "regtest", "--listen", "127.0.0.1", "--port", str(port),
                      "--data-dir", str(data), "--rate-limit-by", "address")
    alice = Musig2Node(os.urandom(32), chain=REGTEST, dht_config=DHT)
    bob = Musig2Node(os.urandom(32), chain=REGTEST, dht_config=DHT)
    try:
        lines = await asyncio.to_thread(wait_ready, proc)
        assert any(f"chain regtest: DHT listening on 127.0.0.1:{port} (udp)" in ln
                   for ln in lines)
        await alice.start(dht=True, bootstrap=[("127.0.0.1", port)])
        await bob.start(dht=True, bootstrap=[("127.0.0.1", port)])
        await alice.advertise_signer(nickname="alice")
        await bob.advertise_signer(nickname="bob")
        found_by_bob = await bob.find_available_signers()
        found_by_alice = await alice.find_available_signers()
        assert [a.owner for a in found_by_bob] == [alice.pubkey]
        assert [a.owner for a in found_by_alice] == [bob.pubkey]
        assert (found_by_bob[0].endpoint.host, found_by_bob[0].endpoint.port) == alice.endpoint
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
        rc, out = await asyncio.to_thread(stop_node, proc)
    assert rc == 0, out
    assert "stopping (signal received)" in out and "stopped;" in out
    assert proc.stderr.read() == ""
    assert udp_port_is_free(port)                              # nothing left listening
    assert not any(str(data) in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                   for p in os.listdir("/proc") if p.isdigit()
                   and Path(f"/proc/{p}/cmdline").exists())   # no process left behind
    saved = json.loads((data / "peers.json").read_text())
    assert saved["chain"] == "regtest" and len(saved["peers"]) >= 2


async def test_restarted_without_bootstrap_it_rejoins_through_remembered_peers(tmp_path):
    seed = Musig2Node(os.urandom(32), chain=REGTEST, dht_config=DHT)
    signer = Musig2Node(os.urandom(32), chain=REGTEST, dht_config=DHT)
    await seed.start(dht=True)
    await signer.start(dht=True, bootstrap=[seed.dht_address])
    await signer.advertise_signer(nickname="s")
    data = tmp_path / "node"
    port = free_udp_port()
    common = ("--chain", "regtest", "--listen", "127.0.0.1", "--port", str(port),
              "--data-dir", str(data), "--rate-limit-by", "address")
    first = start_node(*common, "--bootstrap", "127.0.0.1:%d" % seed.dht_address[1])
    try:
        await asyncio.to_thread(wait_ready, first)
        await asyncio.sleep(0.5)           # its join walk answered by our nodes
    finally:
        assert (await asyncio.to_thread(stop_node, first))[0] == 0
    second = start_node(*common)                  # no --bootstrap this time
    wallet = Musig2Node(os.urandom(32), chain=REGTEST, dht_config=DHT)
    try:
        lines = await asyncio.to_thread(wait_ready, second)
        assert any(re.search(r"[1-9]\d* remembered peers", ln) for ln in lines), lines
        ready = [ln for ln in lines if "ready:" in ln][0]
        assert int(re.search(r"ready: (\d+) contacts", ready).group(1)) >= 1
        await wallet.start(dht=True, bootstrap=[("127.0.0.1", port)])
        assert [a.owner for a in await wallet.find_available_signers()] == [signer.pubkey]
    finally:
        await asyncio.gather(wallet.stop(), seed.stop(), signer.stop())
        assert (await asyncio.to_thread(stop_node, second))[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--chain", "dogecoin"], "unknown chain 'dogecoin'"),
    (["--port", "seventy"], "argument --port: invalid int value"),
    (["--port", "70000"], "--port 70000 is not 0..65535"),
    (["--listen", "my-laptop"], "--listen 'my-laptop' is not an IP address"),
    (["--bootstrap", "10.0.0.1"], "bootstrap node '10.0.0.1' is not host:port"),
    (["--bootstrap", "[zz]:5"], "is not an IPv6 address"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--status-interval", "0"], "--status-interval must be positive"),
])
def test_bad_arguments_give_one_clear_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "musig2_plugin.node", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("musig2-node: error: ")
    assert message in proc.stderr


def test_a_port_in_use_gives_one_line_and_exit_1(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "musig2_plugin.node", "--chain", "regtest",
                               "--listen", "127.0.0.1", "--port", str(port),
                               "--data-dir", str(tmp_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"musig2-node: cannot listen on 127.0.0.1:{port}: ")
