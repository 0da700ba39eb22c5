"""How a wallet's node listens and what it publishes: the settings, checked in one place.

The GUI settings dialog, the ``node_start`` command and the automatic start all
read the same four values from Electrum's config (or a command's overrides):

- listen host: loopback (127.0.0.1, the default: only this machine) or all
  interfaces (0.0.0.0), or one of those in IPv6 form;
- listen port: the chain's documented default (constants.DEFAULT_PORTS) unless
  set; when the *default* port is taken (a second wallet of the same Electrum,
  another program) the node takes any free port instead, and says so in its
  status. An explicitly set port that is taken is an error;
- public host and port (0 or empty: none / the listen port): the endpoint strangers connect to (a port forward, a
  server's address). Required to advertise on mainnet/testnet/signet unless the
  listen address itself is public (see transport/addresses.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..foundation.chain import Chain
from ..coordinator import EndpointNotPublic, check_publishable
from ..wallet_bridge import BridgeError

LISTEN_LOOPBACK = "127.0.0.1"
LISTEN_ALL = "0.0.0.0"
LISTEN_HOSTS = (LISTEN_LOOPBACK, LISTEN_ALL, "::1", "::")


class NodeSettingsError(BridgeError):
    """A listen/public setting that cannot work; the message says which and why."""


class ReachNotSettled(BridgeError):
    """Node start's background reachability step (dial-back, relay reservation) has not
    finished in time: what we would publish could still be wrong, so nothing is published."""


@dataclass(frozen=True)
class ReachSettings:
    listen_host: str
    port: Optional[int]               # None: the chain's default port
    public_host: Optional[str]
    public_port: Optional[int]

    def ports_to_try(self, chain: Chain) -> list[int]:
        """The configured port, or the chain's default with any free port as the fallback."""
        return [self.port] if self.port is not None else [chain.default_port, 0]


def _port(value: Any, what: str, allow_zero: bool) -> Optional[int]:
    if value is None or value == "":
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise NodeSettingsError(f"{what} {value!r} is not a number") from None
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise NodeSettingsError(f"{what} {port} is outside 1..65535")
    return port


def read_reach_settings(get: Callable[[str, Any], Any], keys: dict[str, str], chain: Chain,
                        **overrides: Any) -> ReachSettings:
    """Read (``get(key, default)``) and check the settings; ``overrides`` (non-None) win.

    ``keys`` maps listen_host/listen_port/public_host/public_port to config keys."""
    def value(name: str, default: Any) -> Any:
        if overrides.get(name) is not None:
            return overrides[name]
        return get(keys[name], default)

    listen = str(value("listen_host", LISTEN_LOOPBACK) or LISTEN_LOOPBACK).strip()
    if listen not in LISTEN_HOSTS:
        raise NodeSettingsError(f"listen host {listen!r}: choose {LISTEN_LOOPBACK} (this machine "
                                f"only) or {LISTEN_ALL} (all interfaces)")
    port = _port(value("listen_port", None), "listen port", allow_zero=True)
    if port == 0:
        port = None          # "0" in old configs meant "any": now the chain's default first
    public_host = str(value("public_host", "") or "").strip() or None
    public_port = _port(value("public_port", None), "public port", allow_zero=True) or None
    if public_host is not None:
        try:
            check_publishable(public_host, chain)
        except EndpointNotPublic as exc:
            raise NodeSettingsError(f"public host: {exc}") from None
    elif public_port is not None:
        raise NodeSettingsError("a public port needs a public host")
    return ReachSettings(listen, port, public_host, public_port)


def peers_path(data_dir: str | os.PathLike, pubkey: bytes) -> Path:
    """Where a wallet's node remembers its DHT peers: Electrum's data directory of the
    network (already per chain), one file per participant key."""
    return Path(data_dir) / "musig2_plugin" / f"peers-{pubkey.hex()[:16]}.json"
