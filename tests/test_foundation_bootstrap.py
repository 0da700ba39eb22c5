"""Failure paths of scripts/bootstrap.sh: one clear line, nothing half-installed.

The checks run the real bash functions and step scripts, against throwaway virtualenvs and
directories (never the project's .venv). Two stand-ins, both strict: a tiny executable that
reports itself as Python 3.10 (no second real interpreter is on the machine), and an archive URI
on a closed loopback port (the only way to be "offline" without cutting the machine's network).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "scripts" / "bootstrap_lib.sh"


def bash(script: str, *, env: dict | None = None, stdin: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(["bash", "-c", f'. "{LIB}"\n{script}'], input=stdin, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# --- version checks ----------------------------------------------------------------------------

def test_pick_highest_48_from_debian_versions():
    versions = "4.7.2+dfsg-1\n4.8.3+dfsg-1\n4.8.4+dfsg-1~bpo13+1\n4.9.0+dfsg-1\n1:4.8.1-2\n"
    res = bash("pick_electrum_version", stdin=versions)
    assert res.returncode == 0
    # The epoch makes 1:4.8.1-2 the highest Debian version; its upstream version is 4.8.1: accepted.
    assert res.stdout.strip() == "1:4.8.1-2"
    res = bash("pick_electrum_version", stdin="4.8.3+dfsg-1\n4.8.4+dfsg-1~bpo13+1\n4.9.0+dfsg-1\n")
    assert res.stdout.strip() == "4.8.4+dfsg-1~bpo13+1"


@pytest.mark.parametrize("versions", ["4.7.2+dfsg-1\n4.5.8-1\n", "4.9.0-1\n", "", "4.80.1-1\n"])
def test_refuse_when_no_48(versions):
    res = bash("pick_electrum_version", stdin=versions)
    assert res.returncode == 1
    assert res.stdout == ""


@pytest.mark.parametrize("version, ok", [("4.8.4", True), ("4.8.0", True), ("4.8", True),
                                         ("4.7.9", False), ("4.9.0", False), ("4.80", False), ("", False)])
def test_installed_electrum_version_check(version, ok):
    assert (bash(f'electrum_version_ok "{version}"').returncode == 0) is ok


@pytest.mark.parametrize("version, ok", [("3.11.7", True), ("3.11.2", True), ("3.10.12", False),
                                         ("3.12.1", False), ("2.7.18", False)])
def test_python_version_check(version, ok):
    assert (bash(f'python_version_ok "{version}"').returncode == 0) is ok


# --- wrong Python ------------------------------------------------------------------------------

def _fake_python(tmp_path: Path, version: str) -> Path:
    exe = tmp_path / "bin" / "python-fake"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(f'#!/bin/sh\necho "{version}"\n')
    exe.chmod(0o755)
    return exe


def test_wrong_python_gives_one_clear_line_and_creates_nothing(tmp_path):
    fake = _fake_python(tmp_path, "3.10.4")
    venv = tmp_path / "venv"
    res = subprocess.run(["bash", str(REPO / "scripts/bootstrap.d/10-python.sh")],
                         env=dict(os.environ, PYTHON=str(fake), MUSIG2_ROOT=str(REPO),
                                  MUSIG2_VENV=str(venv), MUSIG2_STAMPS=str(venv / ".bootstrap")),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("bootstrap: ERROR: need Python 3.11")
    assert "3.10.4" in lines[0] and "PYTHON=" in lines[0]
    assert not venv.exists()


def test_find_python_accepts_311():
    res = bash("find_python")
    assert res.returncode == 0
    out = subprocess.run([res.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "(3, 11)"


# --- mirror from the machine's apt configuration -------------------------------------------------

def test_mirror_from_deb822_skips_security(tmp_path):
    d = tmp_path / "apt" / "sources.list.d"
    d.mkdir(parents=True)
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "# comment\nTypes: deb deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    res = bash("debian_mirror", env={"APT_SOURCES_DIR": str(tmp_path / "apt")})
    assert res.returncode == 0
    assert res.stdout.strip() == "http://mirror.invalid/debian"


def test_mirror_from_one_line_sources(tmp_path):
    d = tmp_path / "apt"
    d.mkdir()
    (d / "sources.list").write_text(
        "# deb http://old.invalid/debian buster main\n"
        "deb http://mirror.invalid/debian-security bookworm-security main\n"
        "deb [signed-by=/usr/share/keyrings/x.gpg] http://mirror.invalid/debian bookworm main\n")
    res = bash("debian_mirror", env={"APT_SOURCES_DIR": str(d)})
    assert res.stdout.strip() == "http://mirror.invalid/debian"


def test_no_mirror_configured(tmp_path):
    (tmp_path / "apt").mkdir()
    res = bash("debian_mirror", env={"APT_SOURCES_DIR": str(tmp_path / "apt")})
    assert res.returncode == 1 and res.stdout == ""


def test_machine_mirror_is_found():
    res = bash("debian_mirror")
    assert res.returncode == 0 and res.stdout.strip().startswith(("http://", "https://"))


# --- no network to the Debian archive --------------------------------------------------------------

def _throwaway_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    return venv, site


def _run_step20_offline(tmp_path: Path, venv: Path) -> subprocess.CompletedProcess:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    root = tmp_path / "root"               # a copy of the scripts, so logs land in tmp, not the repo
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "scripts" / "bootstrap_lib.sh").write_text((REPO / "scripts/bootstrap_lib.sh").read_text())
    return subprocess.run(
        ["bash", str(REPO / "scripts/bootstrap.d/20-electrum.sh")],
        env=dict(os.environ, MUSIG2_ROOT=str(root), MUSIG2_VENV=str(venv),
                 MUSIG2_STAMPS=str(venv / ".bootstrap"), TMPDIR=str(tmpdir),
                 DEBIAN_MIRROR="http://127.0.0.1:9/debian"),
        capture_output=True, text=True, timeout=300)


def test_too_old_electrum_in_venv_is_not_taken_as_done_and_left_intact(tmp_path):
    """An Electrum 4.7 already in the venv (and even a stamp claiming it) must not count as done.

    The stand-in is a minimal ``electrum`` package whose version.py says 4.7.2, Electrum's own
    format. The step must try to replace it; with the archive unreachable it fails with one line
    and leaves the old one exactly as it was (no half-swapped directory).
    """
    venv, site = _throwaway_venv(tmp_path)
    old = site / "electrum"
    old.mkdir()
    (old / "version.py").write_text('ELECTRUM_VERSION = "4.7.2"\n')
    (venv / "bin" / "electrum").write_text("#!/bin/sh\n")
    (venv / "bin" / "electrum").chmod(0o755)
    (venv / ".bootstrap").mkdir()
    (venv / ".bootstrap" / "electrum.stamp").write_text("4.7.2")
    res = _run_step20_offline(tmp_path, venv)
    assert res.returncode == 1
    errors = [l for l in res.stderr.splitlines() if l.startswith("bootstrap: ERROR")]
    assert len(errors) == 1 and "cannot reach the Debian archive" in errors[0], res.stderr
    assert sorted(p.name for p in old.iterdir()) == ["version.py"]
    assert "4.7.2" in (old / "version.py").read_text()
    assert not [p for p in site.iterdir() if p.name.startswith(".electrum")]


def test_electrum_ecc_loads_its_own_libsecp256k1():
    """Electrum's signatures come from the libsecp256k1 built into electrum_ecc's package."""
    code = ("import os, electrum_ecc.ecc_fast as f; "
            "print(os.path.dirname(os.path.abspath(f._libsecp256k1._name)) == os.path.dirname(f.__file__), "
            "f.HAS_SCHNORR)")
    res = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.stdout.split() == ["True", "True"], res.stderr


@pytest.mark.slow
def test_unreachable_archive_gives_one_clear_line_and_installs_nothing(tmp_path):
    venv, site = _throwaway_venv(tmp_path)
    before = sorted(p.name for p in site.iterdir())
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    root = tmp_path / "root"               # a copy of the scripts, so logs land in tmp, not the repo
    (root / "scripts").mkdir(parents=True)
    for f in ("bootstrap_lib.sh",):
        (root / "scripts" / f).write_text((REPO / "scripts" / f).read_text())
    res = subprocess.run(
        ["bash", str(REPO / "scripts/bootstrap.d/20-electrum.sh")],
        env=dict(os.environ, MUSIG2_ROOT=str(root), MUSIG2_VENV=str(venv),
                 MUSIG2_STAMPS=str(venv / ".bootstrap"), TMPDIR=str(tmpdir),
                 # port 9 (discard) on loopback: nothing listens, the connection is refused at once
                 DEBIAN_MIRROR="http://127.0.0.1:9/debian"),
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    errors = [l for l in res.stderr.splitlines() if l.startswith("bootstrap: ERROR")]
    assert len(errors) == 1, res.stderr
    assert "cannot reach the Debian archive at http://127.0.0.1:9/debian" in errors[0]
    assert "check the network" in errors[0]
    # Nothing half-installed: site-packages unchanged, no launcher, no stamp, temp dir removed.
    assert sorted(p.name for p in site.iterdir()) == before
    assert not (venv / "bin" / "electrum").exists()
    assert not (venv / ".bootstrap").exists()
    assert list(tmpdir.iterdir()) == []


# --- the real set-up is complete and idempotent -------------------------------------------------------

def test_bootstrap_done_and_second_run_is_a_no_op():
    venv = REPO / ".venv"
    stamp = venv / ".bootstrap" / "electrum.stamp"
    assert stamp.read_text().startswith("4.8.")
    before = stamp.stat().st_mtime_ns
    env = dict(os.environ, MUSIG2_ROOT=str(REPO), MUSIG2_VENV=str(venv),
               MUSIG2_STAMPS=str(venv / ".bootstrap"))
    for step in ("10-python.sh", "20-electrum.sh"):
        res = subprocess.run(["bash", str(REPO / "scripts/bootstrap.d" / step)], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stderr == "" and res.stdout == ""      # nothing to do, nothing said
    assert stamp.stat().st_mtime_ns == before
    head = (venv / "bin" / "electrum").read_text().splitlines()[0]
    assert head == f"#!{venv}/bin/python"


def test_explicit_missing_python_is_reported_not_replaced(tmp_path):
    venv = tmp_path / "venv"
    res = subprocess.run(["bash", str(REPO / "scripts/bootstrap.d/10-python.sh")],
                         env=dict(os.environ, PYTHON=str(tmp_path / "no-such-python"),
                                  MUSIG2_ROOT=str(REPO), MUSIG2_VENV=str(venv),
                                  MUSIG2_STAMPS=str(venv / ".bootstrap")),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"bootstrap: ERROR: need Python 3.11, found: {tmp_path / 'no-such-python'}(missing); "
        "install it (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"]
    assert not venv.exists()


def test_bootstrap_sh_stops_at_first_failing_step_with_one_line(tmp_path):
    """The whole entry point (on a copy of scripts/, so the real .venv is not involved)."""
    import shutil
    root = tmp_path / "clone"
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    fake = _fake_python(tmp_path, "3.12.0")
    res = subprocess.run([str(root / "scripts/bootstrap.sh")], env=dict(os.environ, PYTHON=str(fake)),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bootstrap: ERROR: need Python 3.11"), res.stderr
    assert "3.12.0" in lines[0]
    assert not (root / ".venv").exists()
    assert not (root / ".cache" / "knots-trixie").exists()    # later steps did not run
