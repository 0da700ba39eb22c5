"""The whole wallet flow across NATs, run as a user runs it (``scripts/run-demo --nat``).

examples/nat_wallet_demo.py runs in its own process: three Electrum 4.8 daemons in three homes
behind a port forward, a plain masquerade and a random-port NAT (nft in router namespaces), the
regtest chain and two relay/bootstrap nodes on the public segment. It advertises, discovers,
creates the output, funds it, requests, approves, runs both MuSig2 rounds, broadcasts and checks
through the node's RPC that the spend is confirmed in a block (the witness signature verified
under the output key). Here we judge it by its exit status, its output (which wallet is behind
which NAT, which path each is reached by: alice direct, the others through a relay) and by what
it leaves behind: no namespace, no process (pid log with start times).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import netns, procs

pytestmark = [pytest.mark.netns, pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "nat_wallet_demo.py"


def _env(pidlog: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MUSIG2_HARNESS_PIDLOG"] = str(pidlog)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _assert_nothing_left(pid: int, pidlog: Path) -> None:
    left = [ns for ns in netns.list_namespaces() if ns.startswith(f"{netns.PREFIX}{pid}-")]
    assert not left, f"namespaces left: {left}"
    processes, dirs = procs.read_pidlog(pidlog)
    assert processes, "the demo recorded no process"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(procs.is_alive(p, s) for p, s, _ in processes):
        time.sleep(0.1)
    alive = [(p, n) for p, s, n in processes if procs.is_alive(p, s)]
    assert not alive, f"processes left: {alive}"
    assert not [d for d in dirs if os.path.exists(d)], "directories left"


def test_wallet_flow_across_three_kinds_of_nat(tmp_path: Path) -> None:
    netns.check_available()
    pidlog = tmp_path / "pidlog"
    proc = subprocess.Popen([sys.executable, str(DEMO), "--timeout", "120"], cwd=ROOT,
                            env=_env(pidlog), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"{out[-4000:]}\n{err[-4000:]}"
    result = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
    paths = result["paths"]
    assert {k: (v["nat"], v["path"]) for k, v in paths.items()} == {
        "alice": ("port-forward", "direct"), "bob": ("masquerade", "relay"),
        "carol": ("random-port", "relay")}
    # Each wallet is seen from its own router's public address on 203.0.113.0/24.
    # Nobody ran the reach command: node start found the path by itself, in the background
    # (node_start returned before its reach step ran; the advertise waited for it).
    assert 'P + "reach"' not in DEMO.read_text()
    assert all(v["reach_pending_at_start"] is True for v in paths.values()), paths
    ips = {v["public_ip"] for v in paths.values()}
    assert len(ips) == 3 and all(ip.startswith("203.0.113.") for ip in ips)
    # The relayed wallets' traffic went through a relay; alice's did not.
    assert paths["alice"]["relayed"] == {}
    for name in ("bob", "carol"):
        (msgs, nbytes), = paths[name]["relayed"].values()
        assert msgs > 0 and nbytes > 0
    assert f"confirmed in block {result['block_height']}" in out
    assert "verifies (BIP-340) under the output key" in out
    for line in ("alice  port-forward -> DIRECT", "bob    masquerade   -> RELAY",
                 "carol  random-port  -> RELAY"):
        assert line in out
    assert "found bob" in out and "path RELAY" in out
    _assert_nothing_left(proc.pid, pidlog)


def test_interrupted_nat_demo_leaves_nothing(tmp_path: Path) -> None:
    netns.check_available()
    pidlog = tmp_path / "pidlog"
    proc = subprocess.Popen([sys.executable, str(DEMO)], cwd=ROOT, env=_env(pidlog),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in proc.stdout:
        seen += line
        if "[4/10]" in line:        # the wallets are starting in their homes
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"{seen}{out}\n{err[-3000:]}"
    assert "INTERRUPTED" in err and "namespaces and directories removed" in err
    _assert_nothing_left(proc.pid, pidlog)
