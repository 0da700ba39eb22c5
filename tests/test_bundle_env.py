"""The bundle-like environment (.venv-bundle): Electrum's own dependencies and nothing else.

It stands in for Electrum's binary bundles. These tests prove that the plugin's dependencies
are absent there, that the zip installs, is authorized and runs through Electrum's own
machinery there (backend: electrum_ecc's libsecp256k1; DHT code from inside the zip), and that
an Electrum whose libsecp256k1 lacks MuSig2 gets one clear line, no traceback, and keeps running.
The whole wallet flow in this environment is tests/edge_chain/test_bundle_flow_on_chain.py.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness.bundle import (BUNDLE_PYTHON, BUNDLE_VENV, PLUGIN_ONLY_MODULES,
                                  require_bundle_env, shadow_electrum_ecc_without_musig)
from tests.harness.electrum import (REPO, ElectrumCommandError, ElectrumDaemon, build_plugin_zip,
                                    require_electrum)

pytestmark = [pytest.mark.electrum]


def _bundle_py(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_bundle_env()), "-I", "-c", code], capture_output=True,
                          text=True, timeout=120, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env})


def test_bundle_env_has_electrum_and_none_of_the_plugins_dependencies():
    res = _bundle_py(r"""
import importlib.util, json
from importlib import metadata
import electrum.version, electrum_ecc, aiorpcx, cryptography
print(json.dumps({
    "electrum": electrum.version.ELECTRUM_VERSION,
    "present": [m for m in %r if importlib.util.find_spec(m) is not None],
    "dists": sorted(d.metadata["Name"].lower() for d in metadata.distributions()),
}))""" % (PLUGIN_ONLY_MODULES,))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["electrum"].startswith("4.8.")
    assert out["present"] == []                          # coincurve, kademlia, rpcudp, umsgpack
    for name in ("coincurve", "kademlia", "rpcudp", "u-msgpack-python", "pytest", "hypothesis"):
        assert name not in out["dists"]
    # Electrum's own runtime dependencies are there (what its binary bundles ship).
    for name in ("aiorpcx", "electrum-ecc", "aiohttp", "cryptography", "pyqt6", "qrcode"):
        assert name in {d.replace("_", "-") for d in out["dists"]}, name


def test_bundle_step_is_idempotent_and_silent():
    require_bundle_env()
    stamp = BUNDLE_VENV / ".bundle-stamp"
    before = stamp.stat().st_mtime_ns
    env = dict(os.environ, MUSIG2_ROOT=str(REPO), MUSIG2_VENV=str(REPO / ".venv"),
               MUSIG2_STAMPS=str(REPO / ".venv" / ".bootstrap"))
    res = subprocess.run(["bash", str(REPO / "scripts/bootstrap.d/40-bundle.sh")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stderr
    assert stamp.stat().st_mtime_ns == before


IMPORT_ALL = r"""
import importlib, json, sys
from electrum.zip_importer import MemoryZipImporter
blob = open(sys.argv[1], "rb").read()
root = "electrum_external_plugins.musig2_plugin"
imp = MemoryZipImporter(blob, root_name=root, prefix="musig2_plugin", archive_path=sys.argv[1]).install()
spec = imp.find_spec(root)
module = importlib.util.module_from_spec(spec)
sys.modules[root] = module
spec.loader.exec_module(module)
failed = {}
for name in sorted(n for n in imp._modules if "._vendor." not in n):
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = repr(e)
import kademlia
secp = sys.modules[root + ".crypto.secp"]
print(json.dumps({"failed": failed, "kademlia": kademlia.__file__, "backend": secp.BACKEND}))
"""


def test_every_module_imports_from_the_zip_in_the_bundle_env(tmp_path):
    require_electrum()
    z = build_plugin_zip(tmp_path)
    script = tmp_path / "import_all.py"
    script.write_text(IMPORT_ALL)
    res = subprocess.run([str(require_bundle_env()), "-I", str(script), str(z)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # Only the coincurve backend module cannot import there (it is never imported by the plugin
    # when coincurve is absent; backend.py falls back).
    assert out["failed"] == {"electrum_external_plugins.musig2_plugin.crypto._cffi_lib":
                             "ModuleNotFoundError(\"No module named 'coincurve'\")"}
    assert out["kademlia"] == f"{z}/musig2_plugin/_vendor/kademlia/__init__.py"
    assert out["backend"] == "electrum_ecc"


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    return build_plugin_zip(tmp_path_factory.mktemp("zip"))


def test_zip_authorized_and_node_runs_in_the_bundle_env(tmp_path, plugin_zip):
    """Electrum's own loader and authorization in .venv-bundle; the node starts (DHT + peer
    listener) on electrum_ecc's libsecp256k1 with the zip's kademlia."""
    require_bundle_env()
    with ElectrumDaemon(tmp_path / "b", plugin_zip=plugin_zip, venv=BUNDLE_VENV, name="bundle") as d:
        d.start()
        d.create_wallet("w1")
        w = str(d.wallet_path("w1"))
        status = d.cli("musig2_plugin_status")
        assert status["crypto_backend"] == "electrum_ecc" and status["crypto_problem"] is None
        started = d.cli("musig2_plugin_node_start", "-w", w)
        assert started["running"] is True
        assert d.cli("musig2_plugin_status", "-w", w)["node_running"] is True
        log = d.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "cannot initialize plugin" not in log


def test_libsecp256k1_without_musig_one_line_no_traceback_electrum_keeps_running(tmp_path, plugin_zip):
    """Electrum in the bundle env whose electrum_ecc carries a libsecp256k1 built without the
    MuSig2 module (bootstrap step 40): the plugin loads, logs one line, reports it, refuses to
    start the node with that same line, and Electrum goes on serving every other command."""
    require_bundle_env()
    shadow = shadow_electrum_ecc_without_musig(tmp_path / "shadow", BUNDLE_PYTHON)
    with ElectrumDaemon(tmp_path / "n", plugin_zip=plugin_zip, venv=BUNDLE_VENV, name="nomusig",
                        extra_env={"PYTHONPATH": str(shadow)}) as d:
        d.start()
        d.create_wallet("w1")
        w = str(d.wallet_path("w1"))
        status = d.cli("musig2_plugin_status")
        line = status["crypto_problem"]
        assert status["crypto_backend"] == "electrum_ecc"
        assert line and "\n" not in line
        assert "lacks the MuSig2 module" in line and "node will not start" in line
        with pytest.raises(ElectrumCommandError) as refused:
            d.cli("musig2_plugin_node_start", "-w", w)
        assert line in refused.value.stderr + refused.value.stdout
        assert "Traceback" not in refused.value.stderr + refused.value.stdout
        # Electrum itself is unaffected: its own commands (signing with its libsecp256k1 too).
        assert d.cli("musig2_plugin_status", "-w", w)["node_running"] is False
        address = d.cli("getunusedaddress", "-w", w)
        signed = d.cli("signmessage", address, "hello", "-w", w)
        assert d.cli("verifymessage", address, signed, "hello") is True
        log = d.log_path.read_text(errors="replace")
        assert log.count(line) == 1                    # said once, at plugin load
        assert "Traceback" not in log
        # And the proof that this Electrum really ran on the library without MuSig2.
        assert str(shadow) in d.cli("version_info")["libsecp256k1.path"]


QT_PROBE = r'''
import json, sys
from PyQt6.QtWidgets import QApplication, QLabel, QPushButton
app = QApplication([])
from electrum import util
from electrum.simple_config import SimpleConfig
from electrum.plugin import Plugins
from electrum.gui.qt.plugins_dialog import PluginsDialog, PluginDialog
loop, stop_loop, loop_thread = util.create_and_start_event_loop()
config = SimpleConfig({"electrum_path": sys.argv[1], "regtest": True})
plugins = Plugins(config, "qt")
out = {}
try:
    p = plugins.get("musig2_plugin")
    out["loaded"] = p is not None
    dialog = PluginsDialog(config, plugins)
    meta = plugins.descriptions["musig2_plugin"]
    pd = PluginDialog(meta, None, dialog)
    out["plugin_dialog_texts"] = [l.text() for l in pd.findChildren(QLabel)]
    out["authorized"] = plugins.is_authorized("musig2_plugin")
    # Electrum's own dependency check (manifest "requires", imported one by one): the zip is
    # self-contained, so nothing beyond Electrum may be required.
    out["available"] = plugins.is_available("musig2_plugin")
    out["requires"] = list(meta.requires)
    qt_module = sys.modules[type(p).__module__]
    sd = qt_module.SettingsDialog(dialog, p)
    out["settings_problem"] = sd.problem_label.text()
    out["settings_problem_visible"] = not sd.problem_label.isHidden()
    out["node_checkbox_enabled"] = sd.node_checkbox.isEnabled()
finally:
    plugins.stop()
    plugins.join(5)
    loop.call_soon_threadsafe(stop_loop.set_result, 1)
    loop_thread.join(5)
print("PROBE" + json.dumps(out))
'''


def test_plugins_dialog_shows_the_one_line_without_musig(tmp_path, plugin_zip):
    """Tools > Plugins in Electrum's Qt GUI (offscreen), bundle env, libsecp256k1 without
    MuSig2: the plugin loads, its entry in the plugins dialog starts with the one line, its
    settings repeat it and the node cannot be switched on."""
    require_bundle_env()
    shadow = shadow_electrum_ecc_without_musig(tmp_path / "shadow", BUNDLE_PYTHON)
    d = ElectrumDaemon(tmp_path / "q", plugin_zip=plugin_zip, venv=BUNDLE_VENV, name="qt-nomusig")
    script = tmp_path / "qt_probe.py"
    script.write_text(QT_PROBE)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(d.workdir), PYTHONPATH=str(shadow))
    env.pop("MUSIG2_CRYPTO_BACKEND", None)
    res = subprocess.run(d.namespace_argv([str(BUNDLE_PYTHON), str(script), str(d.workdir)]),
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    out = json.loads(next(l for l in res.stdout.splitlines() if l.startswith("PROBE"))[5:])
    assert out["loaded"] and out["authorized"]
    assert out["available"] is True and out["requires"] == []
    line = out["settings_problem"]
    assert "lacks the MuSig2 module" in line and "\n" not in line
    assert out["settings_problem_visible"] is True
    assert out["node_checkbox_enabled"] is False
    assert any(t.startswith(line) for t in out["plugin_dialog_texts"])
    assert res.stderr.count(line) <= 1             # logged once at most, never a traceback


def test_bundle_step_without_the_dev_venv_says_so_in_one_line_and_makes_nothing(tmp_path):
    """Step 40 run before steps 10/20 (no development venv): one 'bootstrap:' line, nothing made."""
    root = tmp_path / "repo"
    (root / "scripts" / "bootstrap.d").mkdir(parents=True)
    for rel in ("scripts/bootstrap_lib.sh", "scripts/bootstrap.d/40-bundle.sh"):
        (root / rel).write_text((REPO / rel).read_text())
    env = dict(os.environ, MUSIG2_ROOT=str(root), MUSIG2_VENV=str(root / ".venv"),
               MUSIG2_STAMPS=str(root / ".venv" / ".bootstrap"))
    res = subprocess.run(["bash", str(root / "scripts/bootstrap.d/40-bundle.sh")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bootstrap: ERROR: no ") and "steps 10 and 20" in lines[0]
    assert not (root / ".venv-bundle").exists()
    assert not list(root.glob(".venv-bundle.stage.*"))
