"""No tor process outlives the network: after a normal stop, a Ctrl-C (SIGINT) in the middle of
start-up, and a SIGTERM once it is up.  Each case runs the harness in a child Python with
``MUSIG2_HARNESS_PIDLOG`` set, so every tor it started is recorded with its start time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.harness.procs import is_alive, read_pidlog
from tests.harness.tornet import PrivateTorNetwork

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.harness.tornet import PrivateTorNetwork
    net = PrivateTorNetwork(base_dir=sys.argv[2])
    Path(sys.argv[3]).write_text(str(net.dir))
    net.start(timeout=120)
    Path(sys.argv[3] + ".up").write_text("up")
    if sys.argv[4] == "stop":
        net.stop()
    else:
        time.sleep(600)
    """
)


def _tors(pidlog: Path) -> list[tuple[int, int | None, str]]:
    if not pidlog.exists():
        return []
    return [p for p in read_pidlog(pidlog)[0] if p[2].startswith("tor-")]


def _run_child(tmp_path: Path, mode: str, sig: int | None, wait_up: bool) -> tuple[int, list, Path]:
    pidlog = tmp_path / "pidlog"
    marker = tmp_path / "dir"
    base = tmp_path / "base"
    base.mkdir()
    env = dict(os.environ, MUSIG2_HARNESS_PIDLOG=str(pidlog),
               MUSIG2_HARNESS_REGISTRY=str(tmp_path / "registry"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO), str(base), str(marker), mode],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while True:
            if child.poll() is not None:
                break
            if wait_up and Path(str(marker) + ".up").exists():
                break
            if not wait_up and len(_tors(pidlog)) >= 7:  # every relay spawned, no consensus yet
                break
            assert time.monotonic() < deadline, "child never reached the point to interrupt"
            time.sleep(0.1)
        if sig is not None:
            assert child.poll() is None, child.stdout.read().decode(errors="replace")
            relays = [t for t in _tors(pidlog) if not t[2].startswith("tor-client-")]
            assert len(relays) == 7 and all(is_alive(pid, start) for pid, start, _ in relays)
            child.send_signal(sig)
        rc = child.wait(60)
    finally:
        if child.poll() is None:  # a failed check above: let the child clean up, then insist
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return rc, _tors(pidlog), Path(marker.read_text())


def test_normal_stop_leaves_no_tor(tmp_path: Path) -> None:
    rc, tors, netdir = _run_child(tmp_path, "stop", None, wait_up=True)
    assert rc == 0
    assert len(tors) >= 8  # 7 relays + the probe client
    assert [t for t in tors if is_alive(t[0], t[1])] == []
    assert not netdir.exists()


def test_ctrl_c_during_startup_leaves_no_tor(tmp_path: Path) -> None:
    rc, tors, netdir = _run_child(tmp_path, "sleep", signal.SIGINT, wait_up=False)
    assert rc != 0  # KeyboardInterrupt
    assert len(tors) >= 7
    assert [t for t in tors if is_alive(t[0], t[1])] == []
    assert not netdir.exists()


def test_sigterm_once_up_leaves_no_tor(tmp_path: Path) -> None:
    rc, tors, netdir = _run_child(tmp_path, "sleep", signal.SIGTERM, wait_up=True)
    assert rc == -signal.SIGTERM
    assert len(tors) >= 8
    assert [t for t in tors if is_alive(t[0], t[1])] == []
    assert not netdir.exists()


def test_missing_tor_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    from tests.harness import tornet
    with pytest.raises(tornet.TorNetError, match="50-tor.sh"):
        PrivateTorNetwork()
