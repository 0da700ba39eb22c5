"""The proxy policy (musig2_plugin.tor.policy): every combination of Electrum's proxy, the
plugin's own proxy, the network mode and the listen host, and every malformed setting."""

from __future__ import annotations

import pytest

from musig2_plugin.tor import (LeakRefused, NetworkMode, PolicyError, ProxyConfigError, ProxySpec,
                               parse_proxy, plan_network, socks_connector)

TOR = ProxySpec("127.0.0.1", 9050, source="electrum")
OWN = ProxySpec("127.0.0.1", 9150, source="plugin")


def test_no_proxy_is_direct_with_the_udp_dht() -> None:
    for mode in ("auto", "direct", NetworkMode.AUTO):
        plan = plan_network(electrum_proxy=None, plugin_proxy=None, mode=mode, listen_host="0.0.0.0")
        assert plan.proxy is None and plan.udp_dht and plan.reachability == "direct"


def test_electrum_proxy_is_followed_and_udp_is_off() -> None:
    plan = plan_network(electrum_proxy=TOR, plugin_proxy=None, mode="auto")
    assert plan.proxy == TOR and plan.udp_dht is False and plan.reachability == "onion-or-relay"
    assert "127.0.0.1:9050 (electrum setting)" in plan.describe()


def test_the_plugins_own_proxy_wins_over_electrums() -> None:
    assert plan_network(electrum_proxy=TOR, plugin_proxy=OWN, mode="proxy").proxy == OWN
    assert plan_network(electrum_proxy=None, plugin_proxy=OWN, mode="auto").proxy == OWN


def test_direct_mode_with_electrums_proxy_is_refused_with_what_to_do() -> None:
    with pytest.raises(LeakRefused) as info:
        plan_network(electrum_proxy=TOR, plugin_proxy=None, mode="direct")
    text = str(info.value)
    assert "socks5 127.0.0.1:9050 (electrum setting)" in text
    assert "UDP DHT" in text and "IP address" in text and "'auto' or 'proxy'" in text


def test_direct_mode_with_the_plugins_own_proxy_is_refused() -> None:
    with pytest.raises(LeakRefused, match="plugin setting"):
        plan_network(electrum_proxy=None, plugin_proxy=OWN, mode="direct")


def test_proxy_mode_without_any_proxy_is_refused() -> None:
    with pytest.raises(ProxyConfigError, match="neither Electrum nor the plugin"):
        plan_network(electrum_proxy=None, plugin_proxy=None, mode="proxy")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "203.0.113.5", "example.org"])
def test_a_public_listener_behind_a_proxy_is_refused(host: str) -> None:
    with pytest.raises(LeakRefused, match="listens on loopback only"):
        plan_network(electrum_proxy=TOR, plugin_proxy=None, listen_host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_listeners_are_fine_behind_a_proxy(host: str) -> None:
    assert plan_network(electrum_proxy=TOR, plugin_proxy=None, listen_host=host).listen_host == host


def test_unknown_modes_are_refused() -> None:
    for bad in ("udp", "tor", 3, "DIRECT!"):
        with pytest.raises(PolicyError, match="auto, direct, proxy"):
            plan_network(electrum_proxy=None, plugin_proxy=None, mode=bad)
    assert NetworkMode.parse(None) is NetworkMode.AUTO and NetworkMode.parse(" Proxy ") is NetworkMode.PROXY


def test_parse_proxy_accepts_electrums_forms() -> None:
    assert parse_proxy("socks5:127.0.0.1:9050", source="electrum") == TOR
    assert parse_proxy("127.0.0.1:9150") == OWN
    assert parse_proxy("socks5:::1:9050").host == "::1"
    assert parse_proxy("[::1]:9050").host == "::1"
    assert parse_proxy("socks5:tor.local:9050", user="u", password="p").user == "u"
    for empty in (None, "", "  ", "none", "None"):
        assert parse_proxy(empty) is None


@pytest.mark.parametrize("text,match", [
    ("socks4:127.0.0.1:9050", "SOCKS4"),
    ("127.0.0.1", "host:port"),
    ("127.0.0.1:notaport", "not a number"),
    ("127.0.0.1:0", "out of range"),
    ("127.0.0.1:70000", "out of range"),
    (":9050", "not a host"),
    ("bad host:9050", "not a host"),
    ("x" * 300 + ":9050", "not a host"),
])
def test_parse_proxy_refuses_malformed_settings(text: str, match: str) -> None:
    with pytest.raises(ProxyConfigError, match=match):
        parse_proxy(text)


def test_the_connector_isolates_peers_unless_the_user_set_credentials() -> None:
    proxy = socks_connector(OWN)
    assert str(proxy) == "SOCKS5 proxy at 127.0.0.1:9150, isolated per destination"
    a, b = proxy.username("x.onion", 7327), proxy.username("y.onion", 7327)
    assert a != b and a == proxy.username("x.onion", 7327) and len(a) == 32
    assert socks_connector(OWN).username("x.onion", 7327) != a       # per-run salt
    assert "auth: username" in str(socks_connector(ProxySpec("127.0.0.1", 9050, user="u", password="p")))
    with pytest.raises(ValueError, match="socks5"):
        socks_connector(ProxySpec("127.0.0.1", 9050, mode="socks4"))


def test_a_public_host_behind_a_proxy_is_refused() -> None:
    with pytest.raises(LeakRefused, match="cannot publish the public host '203.0.113.7'"):
        plan_network(electrum_proxy=TOR, plugin_proxy=None, public_host="203.0.113.7")
    plan = plan_network(electrum_proxy=None, plugin_proxy=None, public_host="203.0.113.7")
    assert plan.proxy is None and plan.udp_dht
