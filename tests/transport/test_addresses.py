"""The publishing rule for endpoints: what each chain may advertise."""
from __future__ import annotations

import pytest

from musig2_plugin.foundation.chain import KNOWN_CHAINS, MAINNET, REGTEST, SIGNET, TESTNET, TESTNET4
from musig2_plugin.transport.addresses import (EndpointNotPublic, check_publishable,
                                               publishable_endpoint, why_not_public)

NOT_PUBLIC = ["0.0.0.0", "::", "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1",
              "172.31.255.254", "192.168.1.1", "100.64.0.1", "169.254.10.10", "fe80::1",
              "fd00::5", "::ffff:192.168.1.1", "::ffff:127.0.0.1", "224.0.0.1", "255.255.255.255",
              "localhost", "LOCALHOST.", "printer.local", "x.localhost", "", "h\u00e9st"]
PUBLIC = ["203.0.113.5", "198.51.100.7", "192.0.2.1", "8.8.8.8", "2001:db8::1",
          "2a01:4f8::1", "172.32.0.1", "node.example.org", "[2001:db8::2]"]


@pytest.mark.parametrize("chain", [MAINNET, TESTNET, TESTNET4, SIGNET])
@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_non_regtest_chains_never_publish_local_addresses(chain, host):
    assert why_not_public(host)
    with pytest.raises(EndpointNotPublic):
        check_publishable(host, chain)
    assert publishable_endpoint(chain, (host, 4000)) is None
    if host:                       # an empty public host means "none set"
        with pytest.raises(EndpointNotPublic):
            publishable_endpoint(chain, ("0.0.0.0", 4000), public_host=host)
    else:
        assert publishable_endpoint(chain, ("0.0.0.0", 4000), public_host=host) is None


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses_and_names_are_published_everywhere(host):
    for chain in KNOWN_CHAINS.values():
        check_publishable(host, chain)
        assert publishable_endpoint(chain, ("0.0.0.0", 4000), public_host=host) == (host, 4000)
        assert publishable_endpoint(chain, ("0.0.0.0", 4000), public_host=host,
                                    public_port=443) == (host, 443)


def test_regtest_may_publish_local_addresses_but_never_the_unspecified_one():
    for host in ("127.0.0.1", "10.0.0.2", "192.168.5.5", "localhost"):
        check_publishable(host, REGTEST)
        assert publishable_endpoint(REGTEST, (host, 5)) == (host, 5)
    for host in ("0.0.0.0", "::"):
        with pytest.raises(EndpointNotPublic, match="unspecified"):
            check_publishable(host, REGTEST)
        # listening on all interfaces, a regtest node publishes loopback (tests on one machine)
        assert publishable_endpoint(REGTEST, (host, 5)) == ("127.0.0.1", 5)


def test_the_listen_address_is_published_when_public_and_ports_are_checked():
    assert publishable_endpoint(MAINNET, ("203.0.113.9", 7000)) == ("203.0.113.9", 7000)
    assert publishable_endpoint(MAINNET, ("203.0.113.9", 7000), public_port=17000) == \
        ("203.0.113.9", 17000)
    for bad in (0, 65536, -1):
        with pytest.raises(EndpointNotPublic, match="port"):
            publishable_endpoint(MAINNET, ("203.0.113.9", 7000), public_port=bad)
    with pytest.raises(EndpointNotPublic):
        check_publishable("a" * 300, MAINNET)
