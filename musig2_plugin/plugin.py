"""The GUI-independent core of the plugin as Electrum sees it (the ``BasePlugin`` subclass).

Electrum instantiates one ``Plugin`` per process from ``cmdline.py`` (daemon / command line) or
``qt.py`` (desktop GUI); both derive from :class:`Musig2Plugin` so that the commands, the settings
and, later, the co-signing node behave the same whichever front end runs. Nothing here imports Qt.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol

from electrum.plugin import BasePlugin
from electrum.version import ELECTRUM_VERSION

if TYPE_CHECKING:
    from electrum.simple_config import SimpleConfig
    from electrum.wallet import Abstract_Wallet

PLUGIN_NAME = "musig2_plugin"
# Config key (in Electrum's own config file, next to plugins.<name>.enabled) of the user's choice
# to run the co-signing node; kept in Electrum's config so both GUIs and the daemon see one value.
CONFIG_NODE_ENABLED = f"plugins.{PLUGIN_NAME}.node_enabled"


class NodeHandle(Protocol):
    """What the plugin needs from the co-signing node (DHT + peer sessions) to report on it.

    The node is attached by the coordinator layer; this edge only asks whether it runs, so the
    edge does not depend on how the node is built.
    """

    def is_running(self) -> bool: ...


class Musig2Plugin(BasePlugin):
    """Electrum-facing state shared by all front ends: version, settings, the attached node."""

    def __init__(self, parent, config: "SimpleConfig", name: str):
        super().__init__(parent, config, name)
        self.node: Optional[NodeHandle] = None

    # --- identity -------------------------------------------------------------------------
    @property
    def version(self) -> Optional[str]:
        """The version of the installed zip, read from its manifest through Electrum.

        Read from Electrum's metadata rather than a constant in code so that the number the
        user saw when authorizing the zip is the number we report.
        """
        metadata = self.parent.get_metadata(self.name)
        return metadata.version if metadata is not None else None

    # --- settings -------------------------------------------------------------------------
    def is_node_enabled(self) -> bool:
        return bool(self.config.get(CONFIG_NODE_ENABLED, False))

    def set_node_enabled(self, enabled: bool) -> None:
        """Persist the user's choice; the node layer starts or stops the node on this value."""
        if not isinstance(enabled, bool):
            raise TypeError(f"node_enabled must be a bool, got {type(enabled).__name__}")
        self.config.set_key(CONFIG_NODE_ENABLED, enabled)

    def is_node_running(self) -> bool:
        return self.node is not None and bool(self.node.is_running())

    # --- reporting ------------------------------------------------------------------------
    def status(self, wallet: Optional["Abstract_Wallet"] = None,
               loaded_wallets: Optional[list["Abstract_Wallet"]] = None) -> dict[str, Any]:
        """A JSON-ready summary for ``musig2_plugin_status`` and the settings dialog.

        ``wallet`` is the one the caller named; without it we report the only loaded wallet, if
        exactly one is loaded, since that is the one any wallet command would act on.
        """
        loaded = list(loaded_wallets or [])
        if wallet is None and len(loaded) == 1:
            wallet = loaded[0]
        return {
            "plugin": self.name,
            "version": self.version,
            "electrum_version": ELECTRUM_VERSION,
            "node_enabled": self.is_node_enabled(),
            "node_running": self.is_node_running(),
            "wallet": wallet.basename() if wallet is not None else None,
            "loaded_wallets": sorted(w.basename() for w in loaded),
        }

    def requires_settings(self) -> bool:
        return True
