"""The node's set-up step (scripts/bootstrap.d/30-chain.sh) and how its failures reach the tests.

When the node cannot be prepared, one line says why and what to do, and the chain-backed tests
fail with that very line (never skip, never pass).  Failures are provoked for real: the script run
as an unprivileged user, an apt source pointing at a closed loopback port, a $BITCOIND that is not
a bitcoind; each in a throwaway cache folder so the real one is untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.harness.chain import REPO, Bitcoind, SETUP_SCRIPT, ChainSetupError, bitcoind_command, cache_dir, free_port

pytestmark = [pytest.mark.chain]

SCRIPT = REPO / SETUP_SCRIPT


def _run_script(env_extra: dict[str, str], *, user: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BITCOIND"}
    env.update(env_extra)
    argv = ["bash", str(SCRIPT)]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]  # numeric ids
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("chain set-up: cannot prepare bitcoind (") and "set $BITCOIND" in line, line
    return line


def _inner_chain_test(tmp_path: Path, cache: Path) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_inner_needs_chain.py"
    test_file.write_text(textwrap.dedent(
        '''
        def test_needs_the_chain(regtest_chain):
            assert regtest_chain.node.height() > 0
        '''
    ))
    env = {k: v for k, v in os.environ.items() if k not in ("BITCOIND", "PYTEST_ADDOPTS")}
    env["MUSIG2_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "tests.harness.fixtures",
         "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), str(test_file)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_without_root_one_line_and_chain_tests_fail_with_it(tmp_path: Path, monkeypatch) -> None:
    # pytest's tmp_path is private to root; the unprivileged user needs a folder it can write.
    cache = Path(tempfile.mkdtemp(prefix="musig2-test-cache-"))
    try:
        os.chmod(cache, 0o777)
        line = _one_error_line(_run_script({"MUSIG2_CACHE": str(cache)}, user="65534"))
        assert "needs root" in line
        assert not (cache / "knots-trixie").exists()

        monkeypatch.delenv("BITCOIND", raising=False)
        monkeypatch.setenv("MUSIG2_CACHE", str(cache))
        with pytest.raises(ChainSetupError) as raised:
            bitcoind_command()
        assert str(raised.value) == line

        res = _inner_chain_test(tmp_path, cache)
    finally:
        shutil.rmtree(cache)
    assert res.returncode != 0, res.stdout
    assert line in res.stdout, res.stdout
    assert "1 error" in res.stdout and "skipped" not in res.stdout and "passed" not in res.stdout, res.stdout


def test_never_prepared_cache_fails_chain_tests_with_instructions(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    res = _inner_chain_test(tmp_path, cache)
    assert res.returncode != 0
    expected = (f"chain set-up: bitcoind is not prepared in {cache / 'knots-trixie'}; run scripts/bootstrap.sh "
                f"(or bash {SETUP_SCRIPT}) as root, or set $BITCOIND to a bitcoind v26+ binary")
    assert expected in res.stdout, res.stdout
    assert "1 error" in res.stdout and "skipped" not in res.stdout, res.stdout


def test_unreachable_archive_one_line_and_nothing_half_built(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    closed_port = free_port()  # nothing listens there: the archive is unreachable
    (apt / "sources.list").write_text(f"deb http://127.0.0.1:{closed_port}/debian bookworm main\n")
    cache = tmp_path / "cache"
    stale = cache / "knots-trixie.tmp.killed"  # what a set-up killed mid-way leaves behind
    (stale / "etc").mkdir(parents=True)
    res = _run_script({"MUSIG2_CACHE": str(cache), "APT_SOURCES_DIR": str(apt)})
    line = _one_error_line(res)
    assert "debootstrap of Debian 13 from the apt mirror failed" in line, line
    # Atomic: the temporary build folders (this one's and the stale one) are gone, and no
    # unstamped node folder appeared.
    assert sorted(p.name for p in cache.iterdir()) == ["knots-trixie.error", "knots-trixie.lock", "knots-trixie.log"]
    assert (cache / "knots-trixie.error").read_text().strip() == line


def test_bitcoind_override_must_be_a_v26_bitcoind(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "bitcoind"
    fake.write_text("#!/bin/sh\necho 'Bitcoin Core daemon version v25.1.0'\n")
    fake.chmod(0o755)
    cache = tmp_path / "cache"
    for candidate, reason in ((str(fake), "is not bitcoind v26 or newer"),
                              (str(tmp_path / "missing"), "is not an executable file")):
        line = _one_error_line(_run_script({"MUSIG2_CACHE": str(cache), "BITCOIND": candidate}))
        assert reason in line, line
        monkeypatch.setenv("BITCOIND", candidate)
        with pytest.raises(ChainSetupError, match=reason):
            bitcoind_command()


def test_bitcoind_override_is_used(tmp_path: Path, monkeypatch) -> None:
    """A user's own bitcoind: here a one-line wrapper around the node these tests use (the prepared
    Knots, or the user's $BITCOIND), so the override path (version check, start, RPC) runs for
    real without a second node installation."""
    knots = bitcoind_command()
    wrapper = tmp_path / "my-bitcoind"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in knots) + ' "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("BITCOIND", str(wrapper))
    assert bitcoind_command() == [str(wrapper)]
    res = _run_script({"BITCOIND": str(wrapper), "MUSIG2_CACHE": str(tmp_path / "unused-cache")})
    assert res.returncode == 0 and "using $BITCOIND" in res.stdout, res.stdout + res.stderr
    assert not (tmp_path / "unused-cache").exists()  # nothing prepared, nothing written
    with Bitcoind() as node:
        assert node.proc.args[0] == str(wrapper)
        assert node.height() == 0 and node.mine(1) and node.height() == 1


def test_prepared_node_rerun_is_a_noop() -> None:
    """Idempotent: on a prepared cache the step changes nothing and says so."""
    if os.environ.get("BITCOIND"):
        res = _run_script({"BITCOIND": os.environ["BITCOIND"]})
        assert res.returncode == 0 and "using $BITCOIND" in res.stdout, res.stdout + res.stderr
        return
    stamp = cache_dir() / "knots-trixie" / ".musig2-stamp"
    before = stamp.stat().st_mtime_ns  # the chain tests need a prepared node: no stamp is a failure
    res = _run_script({})
    assert res.returncode == 0, res.stderr
    assert "already prepared" in res.stdout and "v" in stamp.read_text()
    assert stamp.stat().st_mtime_ns == before


def test_no_mirror_host_is_written_in_the_repository() -> None:
    """The Debian mirror comes from the machine's apt configuration, never from our files."""
    lib = REPO / "scripts" / "bootstrap_lib.sh"
    host = subprocess.run(["bash", "-c", f'source "{lib}"; debian_mirror'], capture_output=True, text=True).stdout.strip()
    assert host.startswith(("http://", "https://", "file://")), host
    hostname = host.split("://", 1)[1].split("/", 1)[0]
    tracked = subprocess.run(["git", "grep", "-lIF", hostname], cwd=REPO, capture_output=True, text=True)
    assert tracked.stdout == "", f"{hostname} written in: {tracked.stdout}"
