"""The node's ephemeral onion service: how a Tor-only node is reached without a relay.

Key choice (docs/tor.md): a new ed25519 key for every run, discarded by Tor (``DiscardPK``), and
the service tied to our control connection (no ``Detach``).  Why not a key stored in the wallet:
- no extra secret on disk: plugin storage is not always encrypted, and an onion key that leaks
  lets anyone impersonate the *endpoint* (not the co-signer, whose envelopes are signed, but
  enough to receive and drop traffic);
- the node's identity is its participant key, which signs the advertisement naming the onion
  address; a stable address adds nothing peers need, since a restart republishes the
  advertisement (higher seq) with the new address;
- if Electrum dies, Tor removes the service with the connection: nothing is left published.
The cost: peers holding an old advertisement fail one handshake after a restart, then find the
new one (the same as any endpoint change).
"""
from __future__ import annotations

from ..foundation import constants as C
from .control import ControlSettings, TorControl, TorControlError


class OnionService:
    """One ephemeral onion service forwarding ``virtual_port`` to the node's loopback listener."""

    def __init__(self, control: TorControl, onion: str, virtual_port: int) -> None:
        self._control = control
        self.onion = onion
        self.virtual_port = virtual_port

    @property
    def endpoint(self) -> tuple[str, int]:
        """What peers dial (through their own Tor): ``(xxx.onion, virtual port)``."""
        return (self.onion, self.virtual_port)

    @classmethod
    async def create(cls, settings: ControlSettings, target: tuple[str, int],
                     virtual_port: int = C.TOR_ONION_VIRTUAL_PORT,
                     publish_timeout: float | None = C.TOR_ONION_PUBLISH_TIMEOUT_S) -> "OnionService":
        """Create the service; by default return once its descriptor is on an HSDir, so the
        address is reachable when the node first advertises it (None: do not wait)."""
        control = await TorControl.connect(settings)
        try:
            onion = await control.add_onion(virtual_port, target, publish_timeout=publish_timeout)
        except BaseException:
            await control.close()
            raise
        return cls(control, onion, virtual_port)

    async def current_services(self) -> list[str]:
        """Onion services of our control connection, as Tor reports them (without .onion)."""
        text = await self._control.getinfo("onions/current")
        return [line.strip() for line in text.splitlines() if line.strip()]

    async def close(self) -> None:
        """Remove the service and close the control connection (idempotent)."""
        try:
            await self._control.del_onion(self.onion)
        except TorControlError:
            pass   # the connection is gone already: Tor removed the service with it
        await self._control.close()
