"""The listen/public settings as the edge reads them (app/reach.py): one checked place."""
from __future__ import annotations

import pytest

from musig2_plugin.app.reach import NodeSettingsError, peers_path, read_reach_settings
from musig2_plugin.foundation.chain import MAINNET, REGTEST
from musig2_plugin.plugin import REACH_KEYS


def read(chain, config=None, **overrides):
    config = dict(config or {})
    return read_reach_settings(lambda k, d: config.get(k, d), REACH_KEYS, chain, **overrides)


def test_defaults_listen_on_loopback_at_the_chains_port_with_a_fallback():
    s = read(MAINNET)
    assert (s.listen_host, s.port, s.public_host, s.public_port) == ("127.0.0.1", None, None, None)
    assert s.ports_to_try(MAINNET) == [28327, 0] and s.ports_to_try(REGTEST) == [18327, 0]
    assert read(MAINNET, {REACH_KEYS["listen_port"]: 0}).port is None   # old "any port" value
    set_port = read(MAINNET, {REACH_KEYS["listen_port"]: "4242"})
    assert set_port.ports_to_try(MAINNET) == [4242]                     # an explicit port: no fallback


def test_all_interfaces_and_a_public_endpoint():
    s = read(MAINNET, {REACH_KEYS["listen_host"]: "0.0.0.0",
                       REACH_KEYS["public_host"]: " node.example.org ",
                       REACH_KEYS["public_port"]: "443"})
    assert (s.listen_host, s.public_host, s.public_port) == ("0.0.0.0", "node.example.org", 443)
    # a command's overrides win over the config
    assert read(MAINNET, {REACH_KEYS["listen_host"]: "0.0.0.0"}, listen_host="127.0.0.1") \
        .listen_host == "127.0.0.1"


@pytest.mark.parametrize("config, match", [
    ({"listen_host": "8.8.8.8"}, "choose 127.0.0.1"),
    ({"listen_host": "my-laptop"}, "choose 127.0.0.1"),
    ({"listen_port": "http"}, "not a number"),
    ({"listen_port": 70000}, "outside 1..65535"),
    ({"public_port": -1, "public_host": "203.0.113.4"}, "outside 1..65535"),
    ({"public_port": 443}, "needs a public host"),
    ({"public_host": "192.168.1.10"}, "not published on mainnet"),
    ({"public_host": "127.0.0.1"}, "not published on mainnet"),
    ({"public_host": "0.0.0.0"}, "unspecified"),
    ({"public_host": "localhost"}, "not published on mainnet"),
])
def test_bad_settings_are_refused_with_the_reason(config, match):
    with pytest.raises(NodeSettingsError, match=match):
        read(MAINNET, {REACH_KEYS[k]: v for k, v in config.items()})


def test_regtest_may_publish_private_addresses():
    assert read(REGTEST, {REACH_KEYS["public_host"]: "10.0.0.5"}).public_host == "10.0.0.5"


def test_peers_file_is_per_network_directory_and_key(tmp_path):
    assert peers_path(tmp_path / "regtest", bytes.fromhex("02" + "ab" * 32)) == \
        tmp_path / "regtest" / "musig2_plugin" / "peers-02ababababababab.json"
