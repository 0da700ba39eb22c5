"""The plugin's settings are Electrum 4.8 config variables, seen through a real (offline)
Electrum daemon on regtest that loaded the plugin zip: ``listconfig`` lists them, ``helpconfig``
describes them, a value set under the old key reaches the plugin through the ConfigVar, and
an unset one falls back to the one declared default."""
from __future__ import annotations

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import DaemonRPC, ElectrumRPCError

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"
KEYS = ["node_enabled", "listen_host", "listen_port", "bootstrap", "public_host", "public_port",
        "advertise", "ad_types", "ad_min_sat", "ad_max_sat", "ad_fee_sat", "ad_nickname",
        "network_mode", "proxy", "tor_control", "tor_control_password", "tor_control_cookie"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("settings")
    d = ElectrumDaemon(tmp / "e", plugin_zip=build_plugin_zip(tmp / "dist"), name="settings")
    d.start()
    d.create_wallet("alice")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rpc(daemon):
    return DaemonRPC(daemon.datadir)


def test_every_setting_is_a_listed_config_variable_with_help(rpc):
    listed = set(rpc.call("listconfig"))
    assert {f"plugins.musig2_plugin.{k}" for k in KEYS} <= listed
    assert "co-signer" in rpc.call("helpconfig", key="plugins.musig2_plugin.advertise")
    assert "SOCKS5" in rpc.call("helpconfig", key="plugins.musig2_plugin.proxy")
    with pytest.raises(ElectrumRPCError, match="No ConfigVar"):
        rpc.call("helpconfig", key="plugins.musig2_plugin.no_such_setting")


def test_a_value_under_the_old_key_reaches_the_plugin_and_unset_restores_the_default(daemon, rpc):
    alice = str(daemon.wallet_path("alice"))
    assert rpc.call(P + "status", wallet_path=alice)["network"]["bootstrap"] == []
    rpc.call("setconfig", key="plugins.musig2_plugin.bootstrap", value="127.0.0.1:4242")
    assert rpc.call("getconfig", key="plugins.musig2_plugin.bootstrap") == "127.0.0.1:4242"
    assert rpc.call(P + "status", wallet_path=alice)["network"]["bootstrap"] == ["127.0.0.1:4242"]
    rpc.call("unsetconfig", key="plugins.musig2_plugin.bootstrap")
    assert rpc.call(P + "status", wallet_path=alice)["network"]["bootstrap"] == []
