"""The settings dialog's network rows (offscreen Qt, Electrum's own plugin loader, our zip): with
Electrum's proxy on, the dialog says how the node is reached; choosing "direct" is refused with
the reason and nothing is saved; a valid choice is saved in Electrum's config."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip, require_electrum

require_electrum()

pytestmark = [pytest.mark.gui, pytest.mark.electrum, pytest.mark.slow]

PROBE = r'''
import json, sys
from PyQt6.QtWidgets import QApplication, QWidget
app = QApplication([])
from electrum.simple_config import SimpleConfig
from electrum.plugin import Plugins
from electrum import util
loop, stop_loop, loop_thread = util.create_and_start_event_loop()
config = SimpleConfig({"electrum_path": sys.argv[1], "regtest": True})
config.set_key("proxy", "socks5:127.0.0.1:9050")
config.set_key("enable_proxy", True)
plugins = Plugins(config, "qt")
out = {}
try:
    p = plugins.get("musig2_plugin")
    qt_module = sys.modules[type(p).__module__]
    parent = QWidget()
    d = qt_module.SettingsDialog(parent, p)
    out["label_auto"] = d.network_label.text()
    d.mode_combo.setCurrentText("direct")
    d.accept()
    out["error_direct"] = d.error_label.text()
    out["saved_after_direct"] = config.get("plugins.musig2_plugin.network_mode")
    d.mode_combo.setCurrentText("proxy")
    d.control_edit.setText("203.0.113.1:9051")
    d.accept()
    out["error_control"] = d.error_label.text()
    d.control_edit.setText("127.0.0.1:9051")
    d.accept()
    out["saved_mode"] = config.get("plugins.musig2_plugin.network_mode")
    out["saved_control"] = config.get("plugins.musig2_plugin.tor_control")
    out["label_onion"] = qt_module.SettingsDialog(parent, p).network_label.text()
    config.set_key("plugins.musig2_plugin.network_mode", "direct")   # edited by hand
    out["label_refused"] = qt_module.SettingsDialog(parent, p).network_label.text()
finally:
    plugins.stop()
    plugins.join(5)
    loop.call_soon_threadsafe(stop_loop.set_result, 1)
    loop_thread.join(5)
print("PROBE" + json.dumps(out))
'''


def test_settings_dialog_shows_the_path_and_refuses_a_leak(tmp_path: Path) -> None:
    d = ElectrumDaemon(tmp_path / "e", plugin_zip=build_plugin_zip(tmp_path / "dist"), name="qtnet")
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(d.workdir))
    res = subprocess.run(d.namespace_argv([sys.executable, str(script), str(d.workdir)]),
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(next(l for l in res.stdout.splitlines() if l.startswith("PROBE"))[5:])
    assert "through socks5 127.0.0.1:9050 (electrum setting)" in out["label_auto"]
    assert "refused" in out["error_direct"] and "reveal your IP address" in out["error_direct"]
    assert out["saved_after_direct"] is None
    assert "must be on this machine" in out["error_control"]
    assert (out["saved_mode"], out["saved_control"]) == ("proxy", "127.0.0.1:9051")
    assert out["label_onion"].startswith("Reachable: onion. Connections: through socks5")
    assert out["label_refused"].startswith("Refused: ") and "direct connections" in out["label_refused"]
