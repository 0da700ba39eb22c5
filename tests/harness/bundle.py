"""The bundle-like environment (.venv-bundle) and the libsecp256k1 without MuSig2.

scripts/bootstrap.d/40-bundle.sh makes both; tests call :func:`require_bundle_env` instead of
skipping, so a machine without them fails loudly rather than passing while proving nothing.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .electrum import REPO, HarnessError

BUNDLE_VENV = REPO / ".venv-bundle"
BUNDLE_PYTHON = BUNDLE_VENV / "bin" / "python"
NOMUSIG_LIB = BUNDLE_VENV / "opt" / "libsecp256k1-nomusig" / "libsecp256k1.so"
#: Modules the plugin needs that Electrum does not ship: the zip must bring them.
PLUGIN_ONLY_MODULES = ("coincurve", "kademlia", "rpcudp", "umsgpack")


def require_bundle_env() -> Path:
    """The bundle-like venv's python, or a clear error saying which bootstrap step makes it."""
    for path in (BUNDLE_PYTHON, BUNDLE_VENV / "bin" / "electrum", NOMUSIG_LIB):
        if not path.exists():
            raise HarnessError(f"{path} is missing: run scripts/bootstrap.sh "
                               "(step scripts/bootstrap.d/40-bundle.sh makes .venv-bundle)")
    return BUNDLE_PYTHON


def electrum_ecc_dir(python: Path) -> Path:
    """Where ``python``'s electrum_ecc package lives."""
    out = subprocess.run([str(python), "-I", "-c",
                          "import electrum_ecc, os; print(os.path.dirname(electrum_ecc.__file__))"],
                         capture_output=True, text=True, timeout=60, check=True)
    return Path(out.stdout.strip())


def shadow_electrum_ecc_without_musig(dest: Path, python: Path) -> Path:
    """A copy of ``python``'s electrum_ecc whose own libsecp256k1 lacks the MuSig2 module.

    Put the returned directory first on PYTHONPATH: Electrum then runs exactly as it would if
    its bundle carried an older libsecp256k1 (electrum_ecc loads the library in its own package
    directory first). Returns the directory to prepend.
    """
    src = electrum_ecc_dir(python)
    target = Path(dest) / "electrum_ecc"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    shutil.copyfile(NOMUSIG_LIB, target / "libsecp256k1.so")
    return Path(dest)
