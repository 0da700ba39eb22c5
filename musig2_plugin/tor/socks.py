"""The connector that sends the node's TCP sessions through a SOCKS5 proxy (Tor).

aiorpcx's SOCKSProxy has asyncio's ``create_connection`` signature, so the transport's client
pool uses it in place of the event loop (musig2_plugin.transport.peer.ClientPool). Host names
and .onion addresses go to the proxy unresolved (SOCKS5 domain-name requests): no local DNS
query reveals whom we talk to.
"""
from __future__ import annotations

from aiorpcx import SOCKS5, NetAddress, SOCKSProxy, SOCKSUserAuth

from .policy import ProxySpec


def socks_connector(spec: ProxySpec) -> SOCKSProxy:
    """A SOCKS5 connector for ``spec`` (with username/password auth when it has a user)."""
    if spec.mode != "socks5":
        raise ValueError(f"only socks5 proxies carry our sessions, not {spec.mode}")
    auth = SOCKSUserAuth(spec.user, spec.password or "") if spec.user else None
    return SOCKSProxy(NetAddress(spec.host, spec.port), SOCKS5, auth)
