"""Plugin commands, reachable as ``electrum [--regtest] <command>`` through a running daemon.

Electrum names a plugin command ``<plugin name>_<function name>``, so ``status`` here is the
command ``musig2_plugin_status``. Every command gets the loaded plugin object as ``plugin``.
Imported by the package ``__init__`` only when Electrum is importable.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from electrum.commands import plugin_command

from .plugin import PLUGIN_NAME

if TYPE_CHECKING:
    from electrum.commands import Commands
    from electrum.wallet import Abstract_Wallet

    from .plugin import Musig2Plugin


@plugin_command('', PLUGIN_NAME)
async def status(self: "Commands", plugin: "Musig2Plugin" = None,
                 wallet: Optional["Abstract_Wallet"] = None) -> dict[str, Any]:
    """Show the MuSig2 plugin's version, whether its co-signing node runs, and the wallet in use.
    Works without a wallet; with -w it reports that wallet.
    """
    loaded = list(self.daemon.get_wallets().values()) if self.daemon is not None else []
    return plugin.status(wallet=wallet, loaded_wallets=loaded)
