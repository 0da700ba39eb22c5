"""The plugin zip: valid for Electrum 4.8, reproducible, and importable the way Electrum imports it.

Uses Electrum's own ``PluginMetadata`` / ``Plugins.read_manifest`` logic and its in-memory zip
importer (``electrum.zip_importer.MemoryZipImporter``), no Electrum daemon.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import build_plugin  # noqa: E402

sys.path.pop(0)

from tests.harness.electrum import require_electrum  # noqa: E402


def test_zip_layout_and_reproducible(tmp_path):
    a = build_plugin.build(tmp_path / "a")
    b = build_plugin.build(tmp_path / "b")
    manifest = json.loads((REPO / "manifest.json").read_text())
    assert a.name == f"musig2_plugin-{manifest['version']}.zip"
    # Same source, same bytes: Electrum's authorization (a signature over sha256) survives rebuilds.
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    names = zipfile.ZipFile(a).namelist()
    for required in ("manifest.json", "__init__.py", "plugin.py", "cmdline.py", "qt.py", "commands.py",
                     "foundation/__init__.py", "foundation/constants.py", "foundation/config.py",
                     "foundation/events.py", "app/__init__.py", "app/cosign.py",
                     "wallet_bridge/vaults.py", "coordinator/payload_crypto.py"):
        assert f"musig2_plugin/{required}" in names
    assert all(n.startswith("musig2_plugin/") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert json.loads(zipfile.ZipFile(a).read("musig2_plugin/manifest.json")) == manifest
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_manifest_accepted_by_electrum(tmp_path):
    require_electrum()
    from electrum.plugin import PluginMetadata, Plugins
    from electrum.version import ELECTRUM_VERSION

    z = build_plugin.build(tmp_path)
    from electrum.simple_config import SimpleConfig
    # A real (command-only, thread-less) Plugins object: the exact parsing Electrum applies to a
    # zip the user adds in Tools > Plugins > Add.
    plugins = Plugins(SimpleConfig({"electrum_path": str(tmp_path / "e"), "regtest": True}), cmd_only=True)
    meta = plugins.read_manifest(str(z))
    assert isinstance(meta, PluginMetadata)
    assert meta.name == "musig2_plugin" and meta.dirname == "musig2_plugin"
    assert {"qt", "cmdline"} <= set(meta.available_for)
    assert meta.is_electrum_version_compatible(), ELECTRUM_VERSION
    assert meta.zip_hash_sha256 == hashlib.sha256(z.read_bytes()).hexdigest()
    for field in ("fullname", "description", "author", "version", "min_electrum_version"):
        assert getattr(meta, field)


@pytest.mark.parametrize("change, message", [
    ({"name": "musig2-plugin"}, "name must be"),
    ({"available_for": ["qt"]}, "available_for"),
    ({"version": "0.1.0beta"}, "dotted version"),
    ({"fullname": ""}, "'fullname'"),
])
def test_bad_manifest_refused_at_build(tmp_path, change, message):
    root = tmp_path / "src"
    (root / "musig2_plugin").mkdir(parents=True)
    (root / "musig2_plugin" / "__init__.py").write_text("")
    manifest = json.loads((REPO / "manifest.json").read_text()) | change
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(build_plugin.BuildError, match=message):
        build_plugin.build(tmp_path / "out", root=root)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


IMPORT_ALL = r'''
import importlib, json, sys
from electrum.zip_importer import MemoryZipImporter
blob = open(sys.argv[1], "rb").read()
root = "electrum_external_plugins.musig2_plugin"
imp = MemoryZipImporter(blob, root_name=root, prefix="musig2_plugin", archive_path=sys.argv[1]).install()
# Electrum executes the package's __init__ itself first (Plugins.exec_module_from_spec).
spec = imp.find_spec(root)
module = importlib.util.module_from_spec(spec)
sys.modules[root] = module
spec.loader.exec_module(module)
commands_at_init = root + ".commands" in sys.modules
failed = {}
# The vendored dependencies are imported under their own names (vendor_import.py), not as
# submodules of ours: _vendor has no __init__.py on purpose. tests/test_bundle_zip.py covers them.
names = sorted(n for n in imp._modules if "._vendor." not in n)
for name in names:
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = repr(e)
print(json.dumps({"names": names, "failed": failed, "commands_at_init": commands_at_init,
                  "absolute": sorted(m for m in sys.modules if m == "musig2_plugin" or m.startswith("musig2_plugin."))}))
'''


def test_every_module_imports_under_electrums_zip_importer(tmp_path):
    """Electrum runs our code as ``electrum_external_plugins.musig2_plugin`` from memory.

    Every module must import that way: relative imports only (an absolute ``musig2_plugin``
    import would not exist for a user) and nothing that trips Electrum's loader. Runs in a child
    process started outside the repo, so the repo's own ``musig2_plugin`` is not importable there.
    """
    require_electrum()
    z = build_plugin.build(tmp_path)
    script = tmp_path / "import_all.py"
    script.write_text(IMPORT_ALL)
    res = subprocess.run([sys.executable, "-I", str(script), str(z)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "electrum_external_plugins.musig2_plugin.qt" in out["names"]
    assert "electrum_external_plugins.musig2_plugin.commands" in out["names"]
    assert "electrum_external_plugins.musig2_plugin.foundation.constants" in out["names"]
    assert "electrum_external_plugins.musig2_plugin.app.cosign" in out["names"]
    # Loaded by Electrum as a plugin: __init__ registers the commands itself.
    assert out["commands_at_init"] is True
    assert out["failed"] == {}
    assert out["absolute"] == [], "absolute imports of musig2_plugin break inside Electrum"


def test_setup_py_bdist_plugin_builds_the_same_zip(tmp_path):
    res = subprocess.run([sys.executable, "setup.py", "-q", "bdist_plugin", "--dist-dir", str(tmp_path / "sd")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    via_setup = next((tmp_path / "sd").glob("musig2_plugin-*.zip"))
    direct = build_plugin.build(tmp_path / "direct")
    assert via_setup.name == direct.name
    assert via_setup.read_bytes() == direct.read_bytes()


CORE_IMPORT = r'''
import json, sys
import musig2_plugin.crypto
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("electrum", "musig2_plugin"))))
'''


def test_core_import_does_not_load_electrum_or_the_commands():
    """``import musig2_plugin.crypto`` with Electrum installed: no Electrum wallet, no commands.

    The commands (and with them ``electrum.wallet``) are imported only when Electrum loads the
    package as a plugin; the core layers are used on their own by the nodes, tests and benchmarks.
    """
    require_electrum()  # the point is that Electrum is importable and still not imported
    res = subprocess.run([sys.executable, "-c", CORE_IMPORT], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert "musig2_plugin.crypto" in loaded
    assert "musig2_plugin.commands" not in loaded
    assert not any(m == "electrum" or m.startswith("electrum.") for m in loaded), loaded


LAZY_APP = r'''
import json, sys
from musig2_plugin.app import crypto_backend
light = "musig2_plugin.coordinator" in sys.modules
from musig2_plugin.app import WalletCosigner, recovery
print(json.dumps({"coordinator_after_backend": light,
                  "coordinator_after_service": "musig2_plugin.coordinator" in sys.modules,
                  "recovery": recovery.__name__, "backend": crypto_backend.NAME}))
'''


def test_the_application_face_loads_what_is_used():
    """Every daemon builds the plugin object at start-up and asks the application layer for the
    crypto backend's report: that must not import the coordinator, DHT and transport."""
    res = subprocess.run([sys.executable, "-c", LAZY_APP], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["coordinator_after_backend"] is False
    assert out["coordinator_after_service"] is True
    assert out["recovery"] == "musig2_plugin.app.recovery" and out["backend"]
