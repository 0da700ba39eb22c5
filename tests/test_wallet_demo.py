"""examples/wallet_demo.py, the README's demo, run as a user runs it: a separate process on the
real regtest chain (bitcoind + ElectrumX) with real Electrum 4.8 daemons, judged by its exit status,
its printed output and by what it leaves behind (nothing: every process it started is gone and its
directories removed, also after Ctrl-C, SIGTERM or a failure).

The demo checks the chain itself (node RPC: transaction in a block, the witness signature verified
under the output key for the sighash); it prints "OK" and a RESULT line only after those checks.
Processes are proven gone through the harness's pid log (``MUSIG2_HARNESS_PIDLOG``: pid and start
time of every process the demo spawned, so a reused pid is not mistaken for ours).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musig2_plugin.foundation import constants as C
from tests.harness import procs

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "wallet_demo.py"
PHASES = ["chain", "wallets", "discovery", "output", "funding", "request", "signing", "confirmed"]


def _env(pidlog: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MUSIG2_HARNESS_PIDLOG"] = str(pidlog)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.update(extra)
    return env


def _run(args: list[str], pidlog: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMO), *args], cwd=ROOT, env=_env(pidlog, **env),
                          capture_output=True, text=True, timeout=timeout)


def _assert_nothing_left(pidlog: Path, expect_processes: bool = True) -> None:
    started, dirs = procs.read_pidlog(pidlog) if pidlog.exists() else ([], [])
    if expect_processes:
        assert started, "the demo recorded no process: the pid log does not prove anything"
    survivors = [(pid, name) for pid, start, name in started if procs.is_alive(pid, start)]
    assert survivors == [], f"still running after the demo exited: {survivors}"
    left = [d for d in dirs if os.path.exists(d)]
    assert left == [], f"directories left behind: {left}"


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0][len("RESULT "):])


def _check_success(proc: subprocess.CompletedProcess, wallets: int, inputs: int) -> dict:
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
    result = _result(out)
    assert result["ok"] is True and result["wallets"] == wallets and result["inputs"] == inputs
    assert re.fullmatch(r"[0-9a-f]{64}", result["txid"]) and re.fullmatch(r"[0-9a-f]{64}", result["block_hash"])
    # 101 blocks at start, 1 to fund alice, 1 for the MuSig2 coins, 1 for the spend
    assert result["block_height"] == 104
    keys = re.fullmatch(r"tr\(musig\(([0-9a-f,]+)\)\)#[a-z0-9]{8}", result["descriptor"]).group(1).split(",")
    assert len(keys) == wallets and keys == sorted(keys) and len(set(keys)) == wallets
    assert result["address"].startswith("bcrt1p")
    assert list(result["timings_s"]) == PHASES
    assert all(v >= 0 for v in result["timings_s"].values())
    assert result["total_s"] >= sum(result["timings_s"].values()) - 0.1
    # what a user reads: every phase, the descriptor and address, reviews, the signature check
    for i, name in enumerate(PHASES, 1):
        assert f"[{i}/8] {name}: " in out
        assert re.search(rf"-- {name}: \d+\.\d\d s", out)
    assert f"descriptor {result['descriptor']}" in out and f"address    {result['address']}" in out
    assert "witness v1 program = output key" in out
    reviewers = re.findall(r"^    (\w+)\s+found it; reviews .* signs input\(s\) (\[[0-9, ]+\])$", out, re.M)
    assert len(reviewers) == wallets - 1
    assert all(json.loads(signed) == list(range(inputs)) for _, signed in reviewers)
    assert len(re.findall(r"approves and joins: approved", out)) == wallets - 1
    assert len(re.findall(r"holds the same fully signed transaction", out)) == wallets - 1
    assert len(re.findall(r"verifies \(BIP-340\) under the output key", out)) == inputs
    assert f"in block 104 {result['block_hash']}" in out
    assert f"OK: the {wallets}-of-{wallets} MuSig2 spend {result['txid']} is confirmed in block 104" in out
    assert "FAILED" not in proc.stderr and "stopped: every process" in proc.stderr
    return result


@pytest.mark.chain
@pytest.mark.electrum
@pytest.mark.slow
@pytest.mark.parametrize("wallets,inputs", [(3, 1), (4, 2)], ids=["3-wallets-1-input", "4-wallets-2-inputs"])
def test_demo_runs_end_to_end_and_leaves_nothing(tmp_path, wallets, inputs):
    pidlog = tmp_path / "pids"
    args = [] if (wallets, inputs) == (3, 1) else ["--wallets", str(wallets), "--inputs", str(inputs)]
    proc = _run(args, pidlog)
    _check_success(proc, wallets, inputs)
    started, _ = procs.read_pidlog(pidlog)
    names = [name for _, _, name in started]
    assert "bitcoind" in names and "electrumx" in names
    assert sum(n.startswith("electrum:") for n in names) == wallets
    _assert_nothing_left(pidlog)


@pytest.mark.chain
@pytest.mark.electrum
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_interrupted_stops_everything(tmp_path, sig):
    """Interrupted once the Electrum daemons run (mid-demo): exit 130, nothing left running."""
    pidlog = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, str(DEMO)], cwd=ROOT, env=_env(pidlog),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[3/8]"):      # chain and all daemons are up
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            pytest.fail("the demo ended before its daemons were up:\n" + "".join(seen) + proc.stderr.read())
        started, _ = procs.read_pidlog(pidlog)
        assert sum(1 for pid, start, _ in started if procs.is_alive(pid, start)) >= 5  # node, server, 3 daemons
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + rest + err
    assert "INTERRUPTED: stopping everything" in err and "stopped: every process" in err
    assert "RESULT" not in rest and "OK:" not in rest
    _assert_nothing_left(pidlog)


@pytest.mark.chain
def test_demo_fails_clearly_when_the_node_cannot_run(tmp_path):
    """No usable bitcoind: exit 1 with the chain set-up's one-line reason, nothing left behind."""
    pidlog = tmp_path / "pids"
    proc = _run([], pidlog, timeout=120, BITCOIND=str(tmp_path / "no-such-bitcoind"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"FAILED: ChainSetupError: chain set-up: \$BITCOIND=\S+ is not an executable file",
                     proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "RESULT" not in proc.stdout and "OK:" not in proc.stdout
    _assert_nothing_left(pidlog, expect_processes=False)


@pytest.mark.parametrize("args,message", [
    (["--wallets", "1"], "--wallets must be within 2.."),
    (["--wallets", str(min(C.MAX_OUTPUT_PARTICIPANTS, C.MAX_REQUEST_KEYS) + 1)], "--wallets must be within 2.."),
    (["--inputs", "0"], "--inputs must be within 1..5"),
    (["--inputs", "6"], "--inputs must be within 1..5"),
    (["--timeout", "0"], "--timeout must be positive"),
    (["--wallets", "three"], "invalid int value"),
    (["--bundle", "4"], "--bundle must be within 0..--wallets"),
    (["--bundle", "-1"], "--bundle must be within 0..--wallets"),
])
def test_demo_refuses_bad_options_before_starting_anything(tmp_path, args, message):
    pidlog = tmp_path / "pids"
    proc = _run(args, pidlog, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not pidlog.exists(), "nothing may be started for bad options"


@pytest.mark.chain
@pytest.mark.electrum
@pytest.mark.slow
def test_demo_fails_clearly_when_a_wallet_daemon_dies(tmp_path):
    """bob's Electrum daemon is killed during funding: the demo notices (it checks every process
    while it waits), exits 1 naming bob, and stops everything else."""
    pidlog = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, str(DEMO)], cwd=ROOT, env=_env(pidlog),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[5/8]"):      # funding: waits for blocks to reach every wallet
                break
        else:
            pytest.fail("the demo ended before funding:\n" + "".join(seen) + proc.stderr.read())
        started, _ = procs.read_pidlog(pidlog)
        bob = [(pid, start) for pid, start, name in started if name == "electrum:bob"]
        assert len(bob) == 1 and procs.is_alive(*bob[0])
        os.kill(bob[0][0], signal.SIGKILL)
        rest, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + rest
    assert proc.returncode == 1, out + err
    assert re.search(r"FAILED: .*Electrum daemon bob exited with -9", err), err
    assert "Traceback" not in err and "RESULT" not in out and "OK:" not in out
    assert "stopped: every process" in err
    _assert_nothing_left(pidlog)
