"""The plugin inside a real Electrum 4.8 daemon, driven through Electrum's own command line.

No fakes: Electrum's launcher (.venv/bin/electrum, from Debian's package), a regtest daemon in a
throwaway directory, the plugin zip as a user installs it. Electrum's own authorization check runs
unmodified; the harness only shows it a test key file (see tests/harness/electrum.py).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest


from tests.harness.electrum import (ElectrumCommandError, ElectrumDaemon, HarnessError,  # noqa: E402
                                    PluginKey, build_plugin_zip, require_electrum)

require_electrum()   # a clear error, never a silent skip, when Electrum 4.8 is missing

pytestmark = [pytest.mark.electrum, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((REPO / "manifest.json").read_text())


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    return build_plugin_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def alice(tmp_path_factory, plugin_zip):
    """One running daemon shared by the happy-path tests of this module (start-up costs seconds)."""
    d = ElectrumDaemon(tmp_path_factory.mktemp("alice"), plugin_zip=plugin_zip, name="alice")
    try:
        d.start()
        yield d
    finally:
        d.stop()


def test_status_through_electrum_cli_without_wallet(alice):
    status = alice.cli("musig2_plugin_status")
    # Later layers may add fields; these are the foundation's contract.
    expected = {
        "plugin": "musig2_plugin",
        "version": MANIFEST["version"],
        "node_enabled": False,
        "node_running": False,
        "wallet": None,
        "loaded_wallets": [],
    }
    assert {k: status.get(k, "<missing>") for k in expected} == expected
    assert status["electrum_version"].startswith("4.8.")
    # The daemon loaded our cmdline Plugin class from the zip, under Electrum's external name.
    log = alice.log_path.read_text(errors="replace")
    assert "cannot initialize plugin" not in log
    assert "Traceback" not in log


def test_status_reports_wallets_and_settings(alice):
    alice.create_wallet("w1")
    status = alice.cli("musig2_plugin_status")
    assert status["wallet"] == "w1"
    assert status["loaded_wallets"] == ["w1"]

    # With two wallets loaded, the command needs -w, exactly as Electrum's wallet commands do.
    alice.create_wallet("w2")
    with pytest.raises(ElectrumCommandError) as err:
        alice.cli("musig2_plugin_status")
    assert "wallet not specified" in err.value.stderr + err.value.stdout
    status = alice.cli("musig2_plugin_status", "-w", str(alice.wallet_path("w2")))
    assert status["wallet"] == "w2"
    assert status["loaded_wallets"] == ["w1", "w2"]

    # The node switch lives in Electrum's config: the daemon's plugin sees a change at once.
    alice.cli("setconfig", "plugins.musig2_plugin.node_enabled", "true")
    status = alice.cli("musig2_plugin_status", "-w", str(alice.wallet_path("w1")))
    assert status["node_enabled"] is True
    assert status["node_running"] is False   # no node is attached by the edge on its own
    alice.cli("setconfig", "plugins.musig2_plugin.node_enabled", "false")
    assert alice.cli("musig2_plugin_status", "-w", str(alice.wallet_path("w1")))["node_enabled"] is False


def _cli_refuses_command(d: ElectrumDaemon) -> str:
    """Electrum must not even know the command: its parser only has commands of runnable plugins."""
    res = d.run("musig2_plugin_status")
    assert res.returncode != 0, res.stdout
    assert "unknown command: musig2_plugin_status" in res.stderr, res.stderr
    return res.stderr


def test_unauthorized_zip_is_not_run(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", name="unauthorized")
    d.install_plugin(plugin_zip, authorize=False)
    _cli_refuses_command(d)


def test_zip_signed_with_another_key_is_not_run(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", name="otherkey")
    d.install_plugin(plugin_zip)
    # The key file now holds a different key (another password): the stored signature is invalid.
    d.plugin_key = PluginKey("another password", b"\x07" * 32)
    d._write_keyfile()
    _cli_refuses_command(d)


def test_modified_zip_is_not_run(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", name="tampered")
    installed = d.install_plugin(plugin_zip)
    # Change one byte of code after authorization: the zip's sha256 no longer matches the signature.
    with zipfile.ZipFile(installed, "a") as zf:
        zf.writestr("musig2_plugin/extra.py", "x = 1\n")
    _cli_refuses_command(d)


def test_disabled_plugin_is_not_run(tmp_path, plugin_zip):
    d = ElectrumDaemon(tmp_path / "e", plugin_zip=plugin_zip, enable_plugin=False, name="disabled")
    _cli_refuses_command(d)


def test_daemon_with_tampered_zip_starts_without_plugin(tmp_path, plugin_zip):
    """A bad plugin must not take the wallet down: Electrum starts, without our code."""
    d = ElectrumDaemon(tmp_path / "e", name="tampered-daemon")
    installed = d.install_plugin(plugin_zip)
    installed.write_bytes(installed.read_bytes() + b"\0")
    try:
        d.start()
        assert d.cli("list_wallets") == []
        _cli_refuses_command(d)
        assert "loaded plugin 'musig2_plugin'" not in d.log_path.read_text(errors="replace")
    finally:
        d.stop()
    assert d.proc is None


def test_harness_refuses_non_loopback_server(tmp_path):
    with pytest.raises(HarnessError, match="loopback"):
        ElectrumDaemon(tmp_path / "e", server="10.0.0.1:50001:t")


def test_second_daemon_on_same_directory_refused_and_stop_kills(tmp_path, plugin_zip):
    from tests.harness import procs
    a = ElectrumDaemon(tmp_path / "e", plugin_zip=plugin_zip, name="first")
    b = ElectrumDaemon(tmp_path / "e", name="second")
    try:
        a.start()
        pid = a.proc.pid
        start_time = procs.proc_starttime(pid)
        with pytest.raises(HarnessError, match="already serves"):
            b.start()
        assert b.proc is None
        assert a.cli("musig2_plugin_status")["plugin"] == "musig2_plugin"
    finally:
        a.stop()
        b.stop()
    assert not procs.is_alive(pid, start_time)
    assert a.proc is None


def test_harness_refuses_directory_unsafe_for_overlay_options(tmp_path):
    d = ElectrumDaemon(tmp_path / "a:b", name="colon")
    with pytest.raises(HarnessError, match="must not contain"):
        d.run("version")
