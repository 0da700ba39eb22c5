"""scripts/bootstrap.d/50-tor.sh: a no-op once tor is installed; one clear line when it cannot act."""

from __future__ import annotations

import os
import shutil
import tempfile
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEP = REPO / "scripts/bootstrap.d/50-tor.sh"


def test_second_run_is_a_silent_no_op() -> None:
    res = subprocess.run(["bash", str(STEP)], env=dict(os.environ, MUSIG2_ROOT=str(REPO)),
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_without_tor_and_without_root_one_line_says_what_to_do(tmp_path: Path) -> None:
    bin_dir = Path(tempfile.mkdtemp(prefix="musig2-torstep-"))  # pytest's tmp is 0700: uid 65534
    bin_dir.chmod(0o755)                                       # could not read it
    for tool in ("id", "bash", "dirname"):  # no tor, no tor-gencert, no apt-get on this PATH
        (bin_dir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True,
                                                   text=True, check=True).stdout.strip())
    try:
        res = subprocess.run(
            [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(bin_dir / "bash"), str(STEP)],
            env={"PATH": str(bin_dir), "MUSIG2_ROOT": str(REPO)}, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(bin_dir)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        "bootstrap: ERROR: tor is not installed and this is uid 65534: run 'apt-get install tor' as "
        "root (the private Tor network of the tests needs tor and tor-gencert)"]
