"""The connector that sends the node's TCP sessions through a SOCKS5 proxy (Tor).

aiorpcx's SOCKSProxy has asyncio's ``create_connection`` signature, so the transport's client
pool uses it in place of the event loop (musig2_plugin.transport.peer.ClientPool). Host names
and .onion addresses go to the proxy unresolved (SOCKS5 domain-name requests): no local DNS
query reveals whom we talk to.
"""
from __future__ import annotations

import hashlib
import os

from aiorpcx import SOCKS5, NetAddress, SOCKSProxy, SOCKSUserAuth

from .policy import ProxySpec


class IsolatingConnector:
    """SOCKS5 with different credentials per destination, so that Tor (IsolateSOCKSAuth, on by
    default) puts connections to different peers on different circuits: an exit or a relay on
    one circuit then cannot tell that the same user talks to peers A and B.  The username is a
    hash of a per-run random salt and the destination: stable within a run (connections to one
    peer may share a circuit), unlinkable across runs and meaningless to the proxy."""

    def __init__(self, host: str, port: int) -> None:
        self._address = NetAddress(host, port)
        self._salt = os.urandom(16)
        #: The last connection's proxy (aiorpcx sets ``peername`` on it: tests read it).
        self.last: SOCKSProxy | None = None

    def username(self, host: str, port: int) -> str:
        return hashlib.sha256(self._salt + f"{host}:{port}".encode()).hexdigest()[:32]

    async def create_connection(self, protocol_factory, host, port, **kwargs):
        proxy = SOCKSProxy(self._address, SOCKS5, SOCKSUserAuth(self.username(host, port), "x"))
        self.last = proxy
        return await proxy.create_connection(protocol_factory, host, port, **kwargs)

    def __str__(self) -> str:
        return f"SOCKS5 proxy at {self._address}, isolated per destination"


def socks_connector(spec: ProxySpec) -> "SOCKSProxy | IsolatingConnector":
    """The connector for ``spec``: with the user's own proxy credentials exactly those (their
    proxy may require them); without, a circuit per peer (IsolatingConnector)."""
    if spec.mode != "socks5":
        raise ValueError(f"only socks5 proxies carry our sessions, not {spec.mode}")
    if spec.user:
        return SOCKSProxy(NetAddress(spec.host, spec.port), SOCKS5,
                          SOCKSUserAuth(spec.user, spec.password or ""))
    return IsolatingConnector(spec.host, spec.port)
