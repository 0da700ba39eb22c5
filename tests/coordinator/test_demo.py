"""The README's demo (examples/demo.py) as separate OS processes, DHT discovery included."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "examples", "demo.py")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--no-push"]])
def test_demo_three_processes(extra):
    out = subprocess.run([sys.executable, DEMO, "--signers", "3", "--timeout", "60", *extra],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "DEMO OK: 3 processes hold the same valid signature" in out.stdout
    sig_lines = [l for l in out.stdout.splitlines() if "] final signature " in l]
    assert len(sig_lines) == 3 and len({l.split()[-1] for l in sig_lines}) == 1
    assert out.stdout.count(": OK") == 3
    assert "per-phase timings" in out.stdout
    if extra:
        assert out.stdout.count("found (dht)") == 2


def test_demo_refuses_bad_arguments():
    out = subprocess.run([sys.executable, DEMO, "--signers", "1"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "--signers" in out.stderr
