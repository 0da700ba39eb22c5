"""The Qt side: Electrum's own Qt plugin machinery finds, lists and loads our plugin (offscreen).

Real parts: PyQt6 with the offscreen platform, Electrum's ``Plugins(config, 'qt')`` loader and its
``PluginsDialog`` (what Tools > Plugins shows), our zip installed as a user installs it. The probe
runs in a child process (Qt and Electrum's plugin registry are process-global) inside the
harness's mount namespace, so Electrum's authorization check sees the test key.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


from tests.harness.electrum import ElectrumDaemon, build_plugin_zip, require_electrum  # noqa: E402

require_electrum()   # a clear error, never a silent skip, when Electrum 4.8 is missing

pytestmark = [pytest.mark.gui, pytest.mark.electrum, pytest.mark.slow]

PROBE = r'''
import json, sys
from PyQt6.QtWidgets import QApplication, QPushButton
app = QApplication([])
from electrum.simple_config import SimpleConfig
from electrum.plugin import Plugins, BasePlugin
from electrum.gui.qt.plugins_dialog import PluginsDialog, PluginDialog

from electrum import util
# As Electrum's launcher does before any GUI: its asyncio loop in a thread.
loop, stop_loop, loop_thread = util.create_and_start_event_loop()
config = SimpleConfig({"electrum_path": sys.argv[1], "regtest": True})
plugins = Plugins(config, "qt")
out = {}
try:
    name = "musig2_plugin"
    meta = plugins.descriptions.get(name)
    out["listed"] = meta is not None
    out["external"] = plugins.is_external(name)
    out["authorized"] = plugins.is_authorized(name)
    p = plugins.get(name)
    out["loaded"] = p is not None
    if p is not None:
        out["class_module"] = type(p).__module__
        out["is_base_plugin"] = isinstance(p, BasePlugin)
        out["enabled"] = p.is_enabled()
    dialog = PluginsDialog(config, plugins)
    rows = {}
    grid = dialog.grid
    for i in range(grid.count()):
        w = grid.itemAt(i).widget()
        if hasattr(w, "status_button"):
            rows[w.label.text()] = w.status_button.text()
    out["dialog_rows"] = rows
    if meta is not None:
        status_button = next(w.status_button for w in (grid.itemAt(i).widget() for i in range(grid.count()))
                             if getattr(w, "status_button", None) is not None and w.label.text() == meta.fullname)
        pd = PluginDialog(meta, status_button, dialog)
        out["plugin_dialog_buttons"] = sorted(b.text() for b in pd.findChildren(QPushButton))
    if p is not None:
        qt_module = sys.modules[type(p).__module__]
        before = p.is_node_enabled()
        d = qt_module.SettingsDialog(dialog, p)
        d.node_checkbox.setChecked(True)
        d.reject()                       # Close: nothing saved
        out["after_reject"] = p.is_node_enabled()
        d = qt_module.SettingsDialog(dialog, p)
        d.node_checkbox.setChecked(True)
        d.accept()                       # OK: saved in Electrum's config
        out["after_accept"] = p.is_node_enabled()
        out["config_value"] = SimpleConfig({"electrum_path": sys.argv[1], "regtest": True}).get(
            "plugins.musig2_plugin.node_enabled")
        out["before"] = before
        out["state_label"] = qt_module.SettingsDialog(dialog, p).state_label.text()
finally:
    plugins.stop()
    plugins.join(5)
    loop.call_soon_threadsafe(stop_loop.set_result, 1)
    loop_thread.join(5)
print("PROBE" + json.dumps(out))
'''


def _probe(daemon: ElectrumDaemon, tmp_path: Path) -> dict:
    script = tmp_path / "qt_probe.py"
    script.write_text(PROBE)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(daemon.workdir))
    res = subprocess.run(daemon.namespace_argv([sys.executable, str(script), str(daemon.workdir)]),
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(l for l in res.stdout.splitlines() if l.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    return build_plugin_zip(tmp_path_factory.mktemp("dist"))


def test_qt_finds_lists_and_loads_plugin(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", plugin_zip=plugin_zip, name="qt")
    out = _probe(d, tmp_path)
    assert out["listed"] and out["external"] and out["authorized"]
    assert out["loaded"] is True
    assert out["class_module"] == "electrum_external_plugins.musig2_plugin.qt"
    assert out["is_base_plugin"] and out["enabled"]
    assert out["dialog_rows"].get("MuSig2 Co-signing") == "Enabled"
    assert "Settings" in out["plugin_dialog_buttons"]
    assert out["before"] is False
    assert out["after_reject"] is False
    assert out["after_accept"] is True
    assert out["config_value"] is True          # persisted in Electrum's config file
    assert out["state_label"] == "Node: stopped"


def test_qt_lists_but_does_not_load_unauthorized_plugin(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", name="qt-unauth")
    d.install_plugin(plugin_zip, authorize=False)
    out = _probe(d, tmp_path)
    assert out["listed"] and out["external"]
    assert out["authorized"] is False
    assert out["loaded"] is False
    assert out["dialog_rows"].get("MuSig2 Co-signing") == "Disabled"
    # The user is offered Electrum's Install (authorize) button, and no settings of ours.
    assert "Install" in out["plugin_dialog_buttons"]
    assert "Settings" not in out["plugin_dialog_buttons"]
