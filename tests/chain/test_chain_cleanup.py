"""After a test session ends -- passing, failing, leaking, or killed by a signal -- nothing the
harness started is alive and none of its throwaway directories is left.

Each case runs an inner pytest in a subprocess with the harness loaded as a plugin and
``MUSIG2_HARNESS_PIDLOG`` set, so every process and directory the harness creates is recorded;
after the inner session has ended, each recorded pid (with its start time, so a reused pid is not
mistaken for ours) must be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.harness.chain import REPO
from tests.harness.procs import is_alive, read_pidlog

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]

INNER_TESTS = textwrap.dedent(
    '''
    import os
    import time
    from pathlib import Path

    from tests.harness.chain import RegtestChain
    from tests.harness.wallets import ChainWallet


    def test_fails_with_fixtures(regtest_chain, electrum_wallets):
        (wallet,) = electrum_wallets(1)
        assert wallet.height() == -1, "deliberate failure"


    def test_fails_after_leaking_what_it_started(regtest_chain):
        RegtestChain().start()                      # never stopped by the test
        ChainWallet(regtest_chain, "leaked").start()  # never stopped by the test
        raise RuntimeError("deliberate failure")


    def test_waits_for_a_signal(regtest_chain, electrum_wallets):
        electrum_wallets(1)
        Path(os.environ["INNER_READY"]).write_text("ready")
        time.sleep(600)
    '''
)


def _inner_pytest(tmp_path: Path, select: str) -> tuple[list[str], dict[str, str]]:
    test_file = tmp_path / "test_inner_harness.py"
    test_file.write_text(INNER_TESTS)
    env = dict(os.environ)
    env["MUSIG2_HARNESS_PIDLOG"] = str(tmp_path / "pidlog")
    env["INNER_READY"] = str(tmp_path / "ready")
    env["MUSIG2_HARNESS_REGISTRY"] = str(tmp_path / "registry")
    env.pop("PYTEST_ADDOPTS", None)
    argv = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.harness.fixtures",
        "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), str(test_file), "-k", select,
    ]
    return argv, env


def _assert_nothing_left(pidlog: Path) -> list[str]:
    processes, dirs = read_pidlog(pidlog)
    names = [name for _pid, _start, name in processes]
    survivors = [(pid, name) for pid, start, name in processes if is_alive(pid, start)]
    assert survivors == [], f"still running after the session: {survivors}"
    left = [d for d in dirs if os.path.exists(d)]
    assert left == [], f"directories left behind: {left}"
    assert dirs, "the harness recorded no directory: the check above proved nothing"
    return names


def _kinds(names: list[str]) -> dict[str, int]:
    return {
        "bitcoind": names.count("bitcoind"),
        "electrumx": names.count("electrumx"),
        "electrum": sum(1 for n in names if n.startswith("electrum:")),
    }


def test_failing_and_leaking_tests_leave_nothing_running(tmp_path: Path) -> None:
    argv, env = _inner_pytest(tmp_path, "fails")
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "2 failed" in res.stdout, res.stdout
    assert "deliberate failure" in res.stdout
    names = _assert_nothing_left(tmp_path / "pidlog")
    # Session chain + leaked chain; one daemon from the fixture, one leaked.
    assert _kinds(names) == {"bitcoind": 2, "electrumx": 2, "electrum": 2}, names


def _start_waiting_session(tmp_path: Path) -> subprocess.Popen:
    argv, env = _inner_pytest(tmp_path, "waits_for_a_signal")
    inner = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "ready").exists():
        assert inner.poll() is None, f"inner pytest ended early:\n{inner.stdout.read()}"
        assert time.monotonic() < deadline, "inner test never got its chain and daemon up"
        time.sleep(0.2)
    names_before = [n for _p, _s, n in read_pidlog(tmp_path / "pidlog")[0]]
    assert _kinds(names_before) == {"bitcoind": 1, "electrumx": 1, "electrum": 1}, names_before
    return inner


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_session_killed_by_a_signal_leaves_nothing_running(tmp_path: Path, signum: int) -> None:
    inner = _start_waiting_session(tmp_path)
    try:
        inner.send_signal(signum)
        out, _ = inner.communicate(timeout=120)
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait()
    if signum == signal.SIGTERM:
        assert inner.returncode == -signal.SIGTERM, out  # died of the signal, after cleaning up
    else:
        assert inner.returncode == 2 and "KeyboardInterrupt" in out, out  # pytest's "interrupted"
    _assert_nothing_left(tmp_path / "pidlog")


def test_a_sigkilled_session_is_swept_by_the_next_one(tmp_path: Path) -> None:
    """SIGKILL runs no clean-up code: its children outlive it.  The next session's first start
    finds the dead runner's registry file and kills what it left."""
    inner = _start_waiting_session(tmp_path)
    inner.kill()
    inner.communicate(timeout=60)
    processes, _dirs = read_pidlog(tmp_path / "pidlog")
    orphans = [(pid, name) for pid, start, name in processes if is_alive(pid, start)]
    assert len(orphans) == 3, orphans  # the situation is real: all three outlived their runner
    assert len(list((tmp_path / "registry").glob("*.live"))) == 1

    argv, env = _inner_pytest(tmp_path, "fails_with_fixtures")
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and "1 failed" in res.stdout, res.stdout + res.stderr
    _assert_nothing_left(tmp_path / "pidlog")  # the orphans and the second session's own
    assert list((tmp_path / "registry").glob("*.live")) == []
