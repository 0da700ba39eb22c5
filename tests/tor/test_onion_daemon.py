"""A real Electrum 4.8 daemon with the plugin, Tor-only on the private Tor network: Electrum's
proxy is the Tor client's SOCKS port, the plugin has its control port; the node starts as an
ephemeral onion service, the status says so, and another Tor client reaches the node through it.
Refusals: a control port off loopback, an unreachable one (the node then does not run)."""

from __future__ import annotations

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip
from tests.harness.tornet import PrivateTorNetwork, free_port, wait_onion_reachable
from tests.harness.wallets import DaemonRPC, ElectrumRPCError

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onion")
    d = ElectrumDaemon(tmp / "e", plugin_zip=build_plugin_zip(tmp / "dist"), name="onion")
    d.start()
    d.create_wallet("bob")
    yield d
    d.stop()


def _call(daemon, method, **kw):
    kw.setdefault("wallet_path", str(daemon.wallet_path("bob")))
    return DaemonRPC(daemon.datadir).call(P + method, **kw)


def test_the_node_is_reachable_as_an_onion_service(daemon, tor_network: PrivateTorNetwork) -> None:
    tor = tor_network.add_client("daemon-bob", control="cookie")
    visitor = tor_network.add_client("daemon-visitor", control=None)
    try:
        daemon.cli("setconfig", "proxy", f"socks5:127.0.0.1:{tor.socks_port}")
        daemon.cli("setconfig", "enable_proxy", "true")
        net = _call(daemon, "network", tor_control=f"127.0.0.1:{tor.control_port}", wallet_path=None)
        assert net["reachability"] == "onion" and net["udp_dht"] is False
        assert net["tor_control"] == f"127.0.0.1:{tor.control_port} (cookie)"
        node = _call(daemon, "node_start")
        try:
            host, port = node["public_endpoint"]
            assert node["endpoint"][0] == "127.0.0.1"   # the listener stays on loopback
            assert host.endswith(".onion") and len(host) == 62 and port == 7327
            assert node["reachability"] == "onion" and node["dht"] is None
            assert _call(daemon, "status")["node"]["public_endpoint"] == [host, port]
            waited = wait_onion_reachable(visitor.socks_port, host, port)
            print(f"onion service reachable {waited:.1f} s after node_start")
        finally:
            _call(daemon, "node_stop")
    finally:
        tor_network.stop_node(visitor)
        tor_network.stop_node(tor)
        _call(daemon, "network", tor_control="none", wallet_path=None)


def test_control_port_settings_that_cannot_work_are_refused(daemon) -> None:
    with pytest.raises(ElectrumRPCError, match="must be on this machine"):
        _call(daemon, "network", tor_control="203.0.113.9:9051", wallet_path=None)
    with pytest.raises(ElectrumRPCError, match="not host:port"):
        _call(daemon, "network", tor_control="9051", wallet_path=None)
    assert daemon.cli("getconfig", "plugins.musig2_plugin.tor_control") in (None, "")
    _call(daemon, "network", tor_control=f"127.0.0.1:{free_port()}", wallet_path=None)
    try:
        with pytest.raises(ElectrumRPCError, match="TorControlError: cannot reach the Tor control port"):
            _call(daemon, "node_start")
        assert _call(daemon, "status")["node_running"] is False
    finally:
        _call(daemon, "network", tor_control="none", wallet_path=None)
