"""The proxy policy through a real Electrum 4.8 daemon with the plugin zip: Electrum's proxy is
on and the plugin is asked to go direct -> refused with a clear message, nothing saved, nothing
sent (no UDP datagram to the bootstrap peer, no connection to the proxy, no UDP socket in the
daemon); with mode auto the node starts behind the proxy with the UDP DHT off."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import DaemonRPC, ElectrumRPCError

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"


def _group_socket_inodes(pgid: int) -> set[str]:
    inodes: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return inodes


def _udp_inodes() -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            found.add(line.split()[9])
    return found


class Watch:
    """A UDP 'bootstrap peer' and a TCP 'proxy' that only count what reaches them."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.tcp.setblocking(False)
        self.udp_port = self.udp.getsockname()[1]
        self.tcp_port = self.tcp.getsockname()[1]

    def nothing_arrived(self) -> bool:
        try:
            self.udp.recvfrom(65536)
            return False
        except BlockingIOError:
            pass
        try:
            self.tcp.accept()[0].close()
            return False
        except BlockingIOError:
            return True

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    d = ElectrumDaemon(tmp / "e", plugin_zip=build_plugin_zip(tmp / "dist"), name="proxy")
    d.start()
    d.create_wallet("alice")
    yield d
    d.stop()


@pytest.fixture
def watch():
    w = Watch()
    yield w
    w.close()


def _call(daemon, method, **kw):
    kw.setdefault("wallet_path", str(daemon.wallet_path("alice")))
    return DaemonRPC(daemon.datadir).call(P + method, **kw)


def _refused(daemon, method, match, **kw) -> str:
    with pytest.raises(ElectrumRPCError) as info:
        _call(daemon, method, **kw)
    assert match in info.value.message, info.value.message
    return info.value.message


def _daemon_udp_sockets(daemon) -> set[str]:
    return _group_socket_inodes(daemon.proc.pid) & _udp_inodes()


def test_direct_mode_under_electrums_proxy_is_refused_and_nothing_is_sent(daemon, watch) -> None:
    daemon.cli("setconfig", "proxy", f"socks5:127.0.0.1:{watch.tcp_port}")
    daemon.cli("setconfig", "enable_proxy", "true")
    daemon.cli("setconfig", "plugins.musig2_plugin.bootstrap", f"127.0.0.1:{watch.udp_port}")
    try:
        # The settings path: refused, nothing saved.
        msg = _refused(daemon, "network", "LeakRefused", mode="direct", wallet_path=None)
        assert f"socks5 127.0.0.1:{watch.tcp_port} (electrum setting)" in msg
        assert "reveal your IP address" in msg
        assert daemon.cli("getconfig", "plugins.musig2_plugin.network_mode") in (None, "")
        # The same setting written by hand: the node refuses to start and opens nothing.
        daemon.cli("setconfig", "plugins.musig2_plugin.network_mode", "direct")
        status = _call(daemon, "status")
        assert "refused" in status["proxy_policy"]
        assert "direct connections" in status["proxy_policy"]["refused"]
        _refused(daemon, "node_start", "LeakRefused", dht=True)
        status = _call(daemon, "status")
        assert status["node_running"] is False and status["node"] is None
        assert watch.nothing_arrived()
        assert _daemon_udp_sockets(daemon) == set()
    finally:
        daemon.cli("setconfig", "plugins.musig2_plugin.network_mode", "auto")


def test_auto_mode_follows_electrums_proxy_without_udp(daemon, watch) -> None:
    daemon.cli("setconfig", "proxy", f"socks5:127.0.0.1:{watch.tcp_port}")
    daemon.cli("setconfig", "enable_proxy", "true")
    daemon.cli("setconfig", "plugins.musig2_plugin.bootstrap", f"127.0.0.1:{watch.udp_port}")
    net = _call(daemon, "network", wallet_path=None)
    assert net["mode"] == "auto" and net["udp_dht"] is False
    assert net["proxy"] == f"socks5 127.0.0.1:{watch.tcp_port} (electrum setting)"
    node = _call(daemon, "node_start", dht=True)
    try:
        assert node["running"] is True and node["dht"] is None   # UDP DHT off behind the proxy
        assert node["endpoint"][0] == "127.0.0.1"
        assert watch.nothing_arrived()
        assert _daemon_udp_sockets(daemon) == set()
    finally:
        _call(daemon, "node_stop")


def test_proxy_settings_that_cannot_be_honoured_are_refused(daemon, watch) -> None:
    daemon.cli("setconfig", "proxy", f"socks4:127.0.0.1:{watch.tcp_port}")
    daemon.cli("setconfig", "enable_proxy", "true")
    try:
        _refused(daemon, "node_start", "SOCKS4")
        assert _call(daemon, "status")["node_running"] is False
    finally:
        daemon.cli("setconfig", "enable_proxy", "false")
    # No proxy anywhere: "proxy only" is refused, a malformed own proxy too; nothing saved.
    _refused(daemon, "network", "neither Electrum nor the plugin", mode="proxy", wallet_path=None)
    _refused(daemon, "network", "not a number", proxy="127.0.0.1:x", wallet_path=None)
    _refused(daemon, "network", "auto, direct, proxy", mode="udp", wallet_path=None)
    assert daemon.cli("getconfig", "plugins.musig2_plugin.proxy") in (None, "")
    # The plugin's own proxy is saved in canonical form and then followed.
    net = _call(daemon, "network", proxy=f"127.0.0.1:{watch.tcp_port}", mode="proxy", wallet_path=None)
    assert net["proxy"] == f"socks5 127.0.0.1:{watch.tcp_port} (plugin setting)"
    assert daemon.cli("getconfig", "plugins.musig2_plugin.proxy") == f"socks5:127.0.0.1:{watch.tcp_port}"
    net = _call(daemon, "network", proxy="none", mode="auto", wallet_path=None)
    assert net["proxy"] is None and net["udp_dht"] is True
    assert watch.nothing_arrived()
