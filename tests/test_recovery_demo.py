"""``examples/wallet_demo.py --recovery`` (``scripts/run-demo --recovery``) run as a user runs it:
a separate process on the real regtest chain; one co-signer goes silent, the funder's recovery is
refused before the timelock and confirmed after it, nothing is left running."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_wallet_demo import _assert_nothing_left, _env, _result

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "wallet_demo.py"
PHASES = ["chain", "wallets", "output", "funding", "silent", "recovery", "confirmed"]


def test_recovery_demo_confirms_the_funders_script_path_spend(tmp_path):
    pidlog = tmp_path / "pids"
    proc = subprocess.run([sys.executable, str(DEMO), "--recovery", "--blocks", "6"], cwd=ROOT,
                          env=_env(pidlog), capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
    result = _result(out)
    assert result["ok"] is True and result["scenario"] == "recovery" and result["blocks"] == 6
    assert list(result["timings_s"]) == PHASES
    assert re.fullmatch(r"tr\(musig\([0-9a-f,]+\),and_v\(v:pk\([0-9a-f]{66}\),older\(6\)\)\)"
                        r"#[a-z0-9]{8}", result["descriptor"])
    sig, script, control = result["witness"]
    assert len(sig) == 128 and script.endswith("ad56b2") and len(control) == 66
    assert "refused (RecoveryPolicyMismatch)" in out
    assert re.search(r"recover now -> refused: RecoveryNotMature: .*opens at block \d+", out)
    assert f"OK: the recovery {result['txid']} is confirmed" in out
    assert "FAILED" not in proc.stderr and "stopped: every process" in proc.stderr
    _assert_nothing_left(pidlog)


def test_recovery_demo_refuses_bad_blocks(tmp_path):
    proc = subprocess.run([sys.executable, str(DEMO), "--recovery", "--blocks", "1"], cwd=ROOT,
                          env=_env(tmp_path / "pids"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--blocks must be within 2..100" in proc.stderr
    assert not os.path.exists(tmp_path / "pids") or _assert_nothing_left(tmp_path / "pids", False) is None
