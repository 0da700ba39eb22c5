"""Which network path the co-signing node may use, given Electrum's proxy and the plugin's own.

Why this exists: many Electrum users run it through Tor (Electrum's proxy setting) so that nobody
links their coins to their IP address.  The node's DHT (UDP) and sessions (TCP) must not go
around that proxy and publish the user's address next to their co-signing key.  This module turns
the settings into one :class:`NetworkPlan` *before anything is sent*, and refuses a configuration
that would leak with :class:`LeakRefused`, whose message tells the user what to change.

Rules (docs/tor.md):
- A proxy is in effect when the plugin's own proxy is set, or Electrum's proxy is enabled.  The
  plugin's own one wins (a user may send the node through another Tor client than Electrum).
- ``mode`` "direct" (direct UDP DHT and direct TCP) while a proxy is in effect is refused: that
  is exactly the leak.  ``mode`` "proxy" with no proxy is refused too (nothing to send through).
- Through a proxy: SOCKS5 only (host names and .onion addresses go to the proxy unresolved; SOCKS4
  cannot carry them), no UDP at all (the DHT over UDP is off), the node listens on loopback
  only and publishes no public host (inbound arrives through an onion service or a relay).

Pure: no Electrum import; the edge reads Electrum's config and passes plain values in.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from ..foundation import constants as C
from ..foundation.errors import Musig2Error


class PolicyError(Musig2Error, ValueError):
    """Base: the network settings cannot be used as they are; nothing was sent."""


class LeakRefused(PolicyError):
    """The settings would send traffic outside the configured proxy."""


class ProxyConfigError(PolicyError):
    """A proxy setting that cannot be parsed or used (bad host/port, SOCKS4, none to use)."""


class NetworkMode(str, Enum):
    """The plugin's network setting."""

    #: Follow the proxy when one is configured (Electrum's or the plugin's), else direct.
    AUTO = "auto"
    #: Direct UDP DHT and direct TCP sessions; refused while a proxy is in effect.
    DIRECT = "direct"
    #: Only through a proxy; refused when none is configured.
    PROXY = "proxy"

    @classmethod
    def parse(cls, value: object) -> "NetworkMode":
        text = str(value if value is not None else "auto").strip().lower() or "auto"
        try:
            return cls(text)
        except ValueError:
            raise PolicyError(f"network mode must be one of auto, direct, proxy; not {value!r}") from None


@dataclass(frozen=True)
class ProxySpec:
    """One SOCKS proxy: where it is, how to authenticate, and whose setting it came from."""

    host: str
    port: int
    mode: str = "socks5"
    user: str | None = None
    password: str | None = None
    source: str = "plugin"

    def describe(self) -> str:
        return f"{self.mode} {self.host}:{self.port} ({self.source} setting)"


@dataclass(frozen=True)
class NetworkPlan:
    """What the node may do: through ``proxy`` (None: direct), with or without the UDP DHT."""

    proxy: ProxySpec | None
    udp_dht: bool
    listen_host: str
    mode: NetworkMode

    @property
    def reachability(self) -> str:
        """How peers reach us by default: "direct" or, through a proxy, "onion-or-relay"."""
        return "direct" if self.proxy is None else "onion-or-relay"

    def describe(self) -> str:
        if self.proxy is None:
            return "direct UDP DHT and TCP (no proxy configured)"
        return f"through {self.proxy.describe()}; DHT over UDP off"


def _check_host_port(host: str, port: object, what: str) -> tuple[str, int]:
    host = str(host).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or len(host) > C.TOR_MAX_HOST_LEN or any(c.isspace() for c in host):
        raise ProxyConfigError(f"{what}: {host!r} is not a host name or address")
    try:
        port_n = int(str(port).strip())
    except ValueError:
        raise ProxyConfigError(f"{what}: port {port!r} is not a number") from None
    if not 0 < port_n < 65536:
        raise ProxyConfigError(f"{what}: port {port_n} is out of range")
    return host, port_n


def parse_proxy(text: object, *, source: str = "plugin", user: str | None = None,
                password: str | None = None) -> ProxySpec | None:
    """``[socks5:]host:port`` (Electrum's form) -> ProxySpec; empty or "none" -> None.

    The host may be an IPv6 address (everything before the last colon).  SOCKS4 is refused: it
    cannot send a host name or .onion address to the proxy, so names would be resolved locally.
    """
    if text is None:
        return None
    s = str(text).strip()
    if s == "" or s.lower() == "none":
        return None
    mode = "socks5"
    head, sep, rest = s.partition(":")
    if sep and head.lower() in ("socks4", "socks5"):
        mode, s = head.lower(), rest
    if mode != "socks5":
        raise ProxyConfigError(
            f"{source} proxy {text!r} is SOCKS4; the co-signing node needs SOCKS5 (it sends host "
            "names and .onion addresses to the proxy unresolved). Set a socks5 proxy.")
    host, sep, port = s.rpartition(":")
    if not sep:
        raise ProxyConfigError(f"{source} proxy {text!r} is not [socks5:]host:port")
    host, port_n = _check_host_port(host, port, f"{source} proxy")
    return ProxySpec(host=host, port=port_n, mode=mode, user=user or None,
                     password=password or None, source=source)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan_network(*, electrum_proxy: ProxySpec | None, plugin_proxy: ProxySpec | None,
                 mode: NetworkMode | str = NetworkMode.AUTO, listen_host: str = "127.0.0.1",
                 public_host: str | None = None) -> NetworkPlan:
    """Decide the node's network path, or raise :class:`PolicyError` saying what to change.

    Called before the node opens any socket, so a refusal means nothing was sent.
    """
    mode = mode if isinstance(mode, NetworkMode) else NetworkMode.parse(mode)
    proxy = plugin_proxy or electrum_proxy
    if mode is NetworkMode.DIRECT and proxy is not None:
        raise LeakRefused(
            f"refused: a proxy is configured ({proxy.describe()}) but the co-signing plugin is set "
            "to direct connections (UDP DHT and TCP sessions outside the proxy), which would reveal "
            "your IP address next to your co-signing key. Set the plugin's network mode to 'auto' "
            "or 'proxy', or turn the proxy off.")
    if mode is NetworkMode.PROXY and proxy is None:
        raise ProxyConfigError(
            "the co-signing plugin is set to use a proxy only, but neither Electrum nor the plugin "
            "has a proxy configured; set one (e.g. socks5:127.0.0.1:9050) or choose mode 'auto'")
    if proxy is None:
        return NetworkPlan(proxy=None, udp_dht=True, listen_host=listen_host, mode=mode)
    if not is_loopback(listen_host):
        raise LeakRefused(
            f"refused: with a proxy ({proxy.describe()}) the co-signing node listens on loopback "
            f"only, not on {listen_host!r}: a public listener would be reached (and advertised) "
            "outside the proxy. Set the listen host to 127.0.0.1; peers reach you through an "
            "onion service or a relay.")
    if public_host:
        raise LeakRefused(
            f"refused: with a proxy ({proxy.describe()}) the co-signing node cannot publish the "
            f"public host {public_host!r}: peers would be told your address next to your key. "
            "Clear the public host; peers reach you through an onion service or a relay.")
    return NetworkPlan(proxy=proxy, udp_dht=False, listen_host=listen_host, mode=mode)
