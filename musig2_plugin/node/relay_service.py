"""The standalone node's relay role: a transport server (TCP, the DHT's port number) that relays
for unreachable wallets and serves dial-backs (docs/network.md).

Why on the standalone node by default: a relay must be reachable, and a public bootstrap node
is reachable by definition. Wallets find it among their DHT contacts (``m2.relay.info``), reserve
a slot and advertise "reachable through this relay". It holds no wallet and joins no session:
signing requests pushed to it and session envelopes are refused (it is nobody's participant).

Its transport key identifies it inside its clients' signed advertisements, so it is kept in the
node's data directory (``relay.key``, mode 0600) and survives restarts; without a data directory
a fresh key is made per run.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..foundation.config import Musig2Config
from ..transport import DialbackService, Transport

if TYPE_CHECKING:
    from .service import StandaloneNode

log = logging.getLogger("musig2_plugin.node")
KEY_FILE = "relay.key"


def load_or_make_key(data_dir: Path | None) -> bytes:
    """The relay's secret key: 32 bytes kept in ``data_dir/relay.key`` (made once)."""
    if data_dir is None:
        return os.urandom(32)
    path = Path(data_dir) / KEY_FILE
    try:
        raw = path.read_bytes()
        if len(raw) == 32:
            return raw
        log.warning("%s is not a 32-byte key: making a new relay key", path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    os.replace(tmp, path)
    return key


class RelayNodeService:
    """``NodeService`` "relay": relaying and dial-back on the node's port (TCP)."""

    name = "relay"

    def __init__(self, config: Musig2Config | None = None) -> None:
        self.config = config or Musig2Config()
        self.transport: Transport | None = None

    async def start(self, node: "StandaloneNode") -> None:
        s = node.settings
        key = load_or_make_key(s.data_dir)

        async def no_requests(_data: bytes, _source: str = "") -> None:
            raise ValueError("this node holds no wallet: it co-signs nothing")

        async def no_envelopes(_env) -> None:   # never reached: membership is always None
            return None

        self.transport = Transport(key, self.config, chain=s.chain,
                                   membership=lambda _sid: None, on_envelope=no_envelopes,
                                   on_request=no_requests)
        self.transport.enable_relay()
        DialbackService(self.transport)
        await self.transport.start(s.listen_host, s.listen_port)
        log.info("relay: listening on %s:%d (tcp), key %s", s.listen_host, s.listen_port,
                 self.transport.pubkey.hex())

    async def stop(self) -> None:
        if self.transport is not None:
            await self.transport.stop()
            self.transport = None

    def status(self) -> dict:
        if self.transport is None or self.transport.relay is None:
            return {"running": False}
        relay = self.transport.relay
        return {"running": True, "key": self.transport.pubkey.hex(),
                "reservations": len(relay.reservations), "messages": relay.stats.messages,
                "bytes": relay.stats.bytes, "refusals": dict(relay.stats.refusals)}
