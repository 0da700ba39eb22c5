"""Which addresses a node may publish as its endpoint, per chain.

The listen address is local ("127.0.0.1", "0.0.0.0", an interface's address);
the endpoint a node puts into its signed advertisements and requests is where
strangers on the internet should connect. On mainnet, testnet(4) and signet an
endpoint that is loopback, private (RFC 1918, carrier-grade NAT, IPv6 unique
local), link-local, unspecified, multicast or reserved is never published:
it cannot be reached from outside, and a discovering node would aim its
connection attempts at *its own* machine or home network. Regtest may publish
them (every regtest node of a test sits on one machine or one private net).

Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32) are treated as public on purpose: the test internet of network
namespaces uses them to exercise these rules on a non-regtest chain, and no
real peer can be reached at them anyway. Host names are accepted except
``localhost`` and the ``.localhost``/``.local``/``.internal`` names, which
only ever resolve inside one machine or one network; what a name resolves to
later is the name owner's business, and Build 5's per-endpoint limits bound
what a lying name can cost.
"""
from __future__ import annotations

import ipaddress

from ..foundation import constants as C
from ..foundation.chain import Chain
from ..foundation.errors import Musig2Error

#: Never published on a non-regtest chain (and 0.0.0.0/:: on none at all).
_NOT_PUBLIC_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"))
_NOT_PUBLIC_V6 = tuple(ipaddress.ip_network(n) for n in (
    "::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8"))
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


class EndpointNotPublic(Musig2Error, ValueError):
    """An endpoint that must not be published on this chain; the message says why."""


def _ip(host: str) -> "ipaddress.IPv4Address | ipaddress.IPv6Address | None":
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_unspecified(host: str) -> bool:
    """0.0.0.0 or :: (listen on every interface): an address nobody can connect to."""
    addr = _ip(host)
    return addr is not None and addr.is_unspecified


def why_not_public(host: str) -> str | None:
    """None for an address strangers may be told to connect to, else the reason it is not."""
    if not isinstance(host, str) or not host or len(host) > C.MAX_HOST_BYTES or not host.isascii():
        return "not a host name or IP address"
    addr = _ip(host)
    if addr is None:
        name = host.lower().rstrip(".")
        if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
            return f"{host} names this machine or a local network"
        return None
    if addr.is_unspecified:
        return f"{host} is the unspecified address (listen on all interfaces), not an endpoint"
    nets = _NOT_PUBLIC_V4 if addr.version == 4 else _NOT_PUBLIC_V6
    for net in nets:
        if addr in net:
            return f"{host} is a loopback, private, link-local or reserved address ({net})"
    return None


def check_publishable(host: str, chain: Chain) -> None:
    """Raise ``EndpointNotPublic`` unless ``host`` may be published on ``chain``."""
    if is_unspecified(host):
        raise EndpointNotPublic(f"{host} is the unspecified address, never an endpoint")
    if chain.allows_local_endpoints:
        if not isinstance(host, str) or not host or not host.isascii() \
                or len(host) > C.MAX_HOST_BYTES:
            raise EndpointNotPublic("not a host name or IP address")
        return
    reason = why_not_public(host)
    if reason is not None:
        raise EndpointNotPublic(f"{reason}: not published on {chain.name}")


def publishable_endpoint(chain: Chain, listen: tuple[str, int], public_host: str | None = None,
                         public_port: int | None = None) -> tuple[str, int] | None:
    """The endpoint to publish, or None when the node has none yet.

    A configured public host wins (its port defaults to the listen port) and is
    refused outright when it may not be published; else the listen address is
    used when the chain allows it. On regtest a node listening on all
    interfaces publishes 127.0.0.1 (tests on one machine).
    """
    host, port = listen
    if public_port is not None and not 0 < int(public_port) < 65536:
        raise EndpointNotPublic(f"public port {public_port} is not 1..65535")
    if public_host:
        check_publishable(public_host, chain)
        return (public_host, int(public_port or port))
    if is_unspecified(host):
        host = "127.0.0.1" if chain.allows_local_endpoints else host
    try:
        check_publishable(host, chain)
    except EndpointNotPublic:
        return None
    return (host, int(public_port or port))
