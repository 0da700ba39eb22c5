"""The self-contained plugin zip: what it vendors, and how the vendored code is imported.

The zip carries kademlia, rpcudp and umsgpack (the plugin's pure-Python dependencies that
Electrum's binary bundles lack) with their licenses; musig2_plugin/vendor_import.py serves them
under their own names from the bytes Electrum authorized, and only when nothing else provides
them. The bundle-like environment itself is tested in tests/test_bundle_env.py.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import build_plugin  # noqa: E402

sys.path.pop(0)

from tests.harness.electrum import require_electrum  # noqa: E402

VENDORED = {"kademlia": "kademlia", "rpcudp": "rpcudp", "u-msgpack-python": "umsgpack"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_plugin.build(tmp_path_factory.mktemp("zip"))


def test_zip_vendors_each_dependency_with_version_and_license(built):
    z = zipfile.ZipFile(built)
    names = z.namelist()
    index = json.loads(z.read("musig2_plugin/_vendor/vendored.json"))
    got = {p["name"]: p for p in index["packages"]}
    assert set(got) == set(VENDORED)
    for dist, module in VENDORED.items():
        entry = got[dist]
        assert entry["version"] == metadata.version(dist)     # what requirements.txt pins
        assert entry["modules"] == [module]
        assert entry["license"] in ("MIT", "MIT License")
        assert f"musig2_plugin/_vendor/{module}/__init__.py" in names
        for lic in entry["license_files"]:
            data = z.read(f"musig2_plugin/{lic}")
            assert b"Permission is hereby granted" in data      # the MIT text itself
    # Only sources and licenses: no tests of the dependencies, no bytecode, no stubs.
    vendored = [n for n in names if n.startswith("musig2_plugin/_vendor/")]
    assert not any("/tests/" in n or n.endswith((".pyc", ".pyi")) for n in vendored)
    # Nothing Electrum ships is vendored (aiorpcx, cryptography, electrum_ecc ...).
    tops = {n.split("/")[2] for n in vendored}
    assert tops == {"kademlia", "rpcudp", "umsgpack", "licenses", "vendored.json"}


def test_vendored_zip_is_byte_reproducible(tmp_path, built):
    again = build_plugin.build(tmp_path / "again")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(built.read_bytes()).digest()
    for info in zipfile.ZipFile(again).infolist():
        assert info.date_time == build_plugin.FIXED_TIME


def test_build_refuses_without_a_dependency(monkeypatch):
    with pytest.raises(build_plugin.BuildError, match="not-a-real-dist-xyz is not installed"):
        build_plugin.vendored_files(("kademlia", "not-a-real-dist-xyz"))


PROBE = r"""
import importlib, importlib.machinery, importlib.util, json, sys
from electrum.zip_importer import MemoryZipImporter
blocked = set(sys.argv[2].split(",")) if sys.argv[2] else set()
class NotInstalled:
    # the path finder, minus the blocked names: as if they were not installed
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            return None
        return self.inner.find_spec(name, path, target)
    def invalidate_caches(self):
        self.inner.invalidate_caches()
if blocked:
    for m in list(sys.modules):
        if m.partition(".")[0] in blocked:
            del sys.modules[m]
    sys.meta_path[:] = [NotInstalled(f) if f is importlib.machinery.PathFinder else f
                        for f in sys.meta_path]
blob = open(sys.argv[1], "rb").read()
root = "electrum_external_plugins.musig2_plugin"
imp = MemoryZipImporter(blob, root_name=root, prefix="musig2_plugin", archive_path=sys.argv[1]).install()
spec = imp.find_spec(root)
module = importlib.util.module_from_spec(spec)
sys.modules[root] = module
spec.loader.exec_module(module)
dht = importlib.import_module(root + ".dht")
import kademlia.network, rpcudp.protocol, umsgpack
finders = [type(f).__name__ for f in sys.meta_path]
print(json.dumps({"kademlia": kademlia.network.__file__, "rpcudp": rpcudp.protocol.__file__,
                  "umsgpack": umsgpack.__file__, "finders": finders,
                  "roundtrip": umsgpack.unpackb(umsgpack.packb([1, b"x"])) == [1, b"x"],
                  "other": importlib.util.find_spec("not_vendored_name_xyz") is None}))
"""


def _probe(tmp_path: Path, zip_path: Path, blocked: str) -> dict:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    res = subprocess.run([sys.executable, "-I", str(script), str(zip_path), blocked], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_installed_dependencies_win_over_the_vendored_copies(tmp_path, built):
    """Where kademlia is installed (the development venv), the zip's copy is never used: the
    vendor finder sits at the end of sys.meta_path."""
    require_electrum()
    out = _probe(tmp_path, built, "")
    assert "site-packages" in out["kademlia"] and "site-packages" in out["umsgpack"]
    assert out["finders"][-1] == "VendorFinder"
    assert out["other"] is True and out["roundtrip"] is True


def test_vendored_copies_are_served_from_the_authorized_bytes(tmp_path, built):
    """Where they are not installed, the DHT layer imports them from inside the zip (through
    Electrum's in-memory importer: the paths are the archive's synthetic ones)."""
    require_electrum()
    out = _probe(tmp_path, built, "kademlia,rpcudp,umsgpack")
    assert out["kademlia"] == f"{built}/musig2_plugin/_vendor/kademlia/network.py"
    assert out["rpcudp"] == f"{built}/musig2_plugin/_vendor/rpcudp/protocol.py"
    assert out["umsgpack"] == f"{built}/musig2_plugin/_vendor/umsgpack/__init__.py"
    assert out["other"] is True and out["roundtrip"] is True


def test_source_checkout_installs_no_finder():
    """Without a _vendor directory (development, pip install -e) nothing is hooked."""
    import musig2_plugin
    from musig2_plugin.vendor_import import install
    assert install(musig2_plugin) is None
    assert not any(type(f).__name__ == "VendorFinder" for f in sys.meta_path)
