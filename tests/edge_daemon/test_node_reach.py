"""How a wallet's node listens and what it publishes, through a real (offline) Electrum 4.8
daemon on regtest with the plugin zip: settings refusals are one clear line, the status says
how the node is reached, and the node remembers its DHT peers in Electrum's data directory."""
from __future__ import annotations

import json
import time

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import DaemonRPC, ElectrumRPCError

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reach")
    d = ElectrumDaemon(tmp / "e", plugin_zip=build_plugin_zip(tmp / "dist"), name="reach")
    d.start()
    d.create_wallet("alice")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rpc(daemon):
    r = DaemonRPC(daemon.datadir)
    alice = str(daemon.wallet_path("alice"))

    def call(method, wallet=alice, **kw):
        if wallet is not None:
            kw["wallet_path"] = wallet
        return r.call(P + method, **kw)
    return call


def _taken(port: int) -> bool:
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def _refused(rpc, method, match, **kw):
    with pytest.raises(ElectrumRPCError) as info:
        rpc(method, **kw)
    assert match in info.value.message and "\n" not in info.value.message, info.value.message


def test_settings_in_the_status_and_refusals(rpc):
    net = rpc("status")["network"]
    assert net == {"chain": "regtest", "listen_host": "127.0.0.1", "listen_port": 18327,
                   "public_host": None, "public_port": None, "bootstrap": [],
                   "default_bootstrap": []}
    _refused(rpc, "node_start", "NodeSettingsError: listen host '8.8.8.8'", listen_host="8.8.8.8")
    _refused(rpc, "node_start", "a public port needs a public host", public_port=443)
    _refused(rpc, "node_start", "unspecified address", public_host="0.0.0.0")
    assert rpc("status")["node"] is None                     # nothing started by the refusals


def test_all_interfaces_publishes_loopback_on_regtest_and_remembers_peers(daemon, rpc):
    st = rpc("node_start", listen_host="0.0.0.0")
    try:
        reach = st["network"]
        port = reach["listen"][1]
        assert port == 18327 or _taken(18327)       # the chain's default port unless taken
        assert reach["chain"] == "regtest" and reach["listen"] == ["0.0.0.0", port]
        assert reach["endpoint"] == ["127.0.0.1", port] and reach["reachable"] == "direct"
        # beyond loopback without a public host: node start runs the reach step in the
        # background (returned before it ran); the advertise waits for it to settle
        assert st["reach_pending"] is True
        ad = rpc("advertise", nickname="alice")
        assert ad["endpoint"] == f"127.0.0.1:{port}"
        node = rpc("status")["node"]
        assert node["reach_pending"] is False and node["reach_error"] is None
        assert node["reach"]["verified"] is False        # no peer to dial us back: unproved
    finally:
        assert rpc("node_stop") == {"stopped": True}
    [peers] = (daemon.datadir / "musig2_plugin").glob("peers-*.json")
    assert json.loads(peers.read_text())["chain"] == "regtest"


def test_a_public_endpoint_is_what_the_node_advertises(rpc):
    st = rpc("node_start", public_host="signer.example.org", public_port=443)
    assert st["reach_pending"] is False          # a configured public endpoint: no reach step
    try:
        assert st["network"]["endpoint"] == ["signer.example.org", 443]
        assert rpc("advertise")["endpoint"] == "signer.example.org:443"
        assert rpc("status")["node"]["network"]["endpoint"] == ["signer.example.org", 443]
    finally:
        rpc("node_stop")


def test_a_second_wallet_falls_back_from_the_default_port_and_a_set_port_must_be_free(daemon,
                                                                                       rpc):
    daemon.create_wallet("bob")
    bob = str(daemon.wallet_path("bob"))
    a = rpc("node_start")
    assert a["reach_pending"] is False and a["reach"]["public_ip"] is None   # loopback: as before
    try:
        b = rpc("node_start", wallet=bob)
        try:
            pa, pb = a["network"]["listen"][1], b["network"]["listen"][1]
            assert pa != pb and (pa == 18327 or _taken(18327))
            # a port set explicitly is not replaced: taken means one clear line
            rpc("node_stop", wallet=bob)
            _refused(rpc, "node_start", f"cannot listen on 127.0.0.1:{pa}", wallet=bob, port=pa)
        finally:
            rpc("node_stop", wallet=bob)
    finally:
        rpc("node_stop")


def test_the_advertise_setting_at_start_waits_for_the_reach_step(daemon, rpc):
    """'Advertise me' is on and the node listens on all interfaces: node start returns before
    its reach step has run, and the advertisement follows once the step has settled."""
    raw = DaemonRPC(daemon.datadir)
    raw.call("setconfig", key="plugins.musig2_plugin.advertise", value=True)
    raw.call("setconfig", key="plugins.musig2_plugin.ad_nickname", value="alice")
    try:
        st = rpc("node_start", listen_host="0.0.0.0")
        try:
            assert st["reach_pending"] is True and st["advertising"] is False
            deadline = time.monotonic() + 30
            node = rpc("status")["node"]
            while not node["advertising"] and time.monotonic() < deadline:
                time.sleep(0.2)
                node = rpc("status")["node"]
            assert node["advertising"] and not node["reach_pending"], node
            assert node["public_endpoint"] == ["127.0.0.1", st["network"]["listen"][1]]
        finally:
            rpc("node_stop")
    finally:
        raw.call("setconfig", key="plugins.musig2_plugin.advertise", value=False)
