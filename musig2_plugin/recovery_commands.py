"""Plugin commands of the recovery path (``electrum musig2_plugin_recover`` etc.).

Kept apart from commands.py (the cooperative flow) so each stays small. The
same error convention: a refusal is ``UserFacingException("<ErrorClass>: ...")``.

    recovery_backup     the descriptor to back up, and what it recovers
    recovery_info       per coin: confirmation height, the height from which recovery is possible
    recover             build the script-path spend, refuse it before maturity, sign with this
                        wallet's key; complete (funder leaf) -> the raw transaction
    recovery_sign       a k-of-n co-signer reviews the recovery PSBT and adds its signature
    recovery_finalize   witnesses from the signatures in the PSBT -> the raw transaction
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from electrum.commands import plugin_command
from electrum.util import UserFacingException

from .commands import clear_errors
from .plugin import PLUGIN_NAME

if TYPE_CHECKING:
    from electrum.commands import Commands

    from .plugin import Musig2Plugin


@plugin_command('w', PLUGIN_NAME)
async def recovery_backup(self: "Commands", output, wallet=None,
                          plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """The descriptor to back up for a MuSig2 output. Your seed plus this text restore the
    output, its cooperative (key) path and its recovery (script) path.
    arg:str:output:the MuSig2 output (address or descriptor)
    """
    with clear_errors():
        stored = plugin.vaults(wallet).find(str(output))
        out = stored.output
    return {"descriptor": out.descriptor, "address": out.address(),
            "recovery": out.recovery.describe() if out.recovery else None,
            "restore": "restore the wallet from its seed, then run create_output with "
                       "descriptor=<this text> (and recovery=<its policy>)"}


@plugin_command('w', PLUGIN_NAME)
async def recovery_info(self: "Commands", output, wallet=None,
                        plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """When each coin of a MuSig2 output can be recovered through its timelocked leaf.
    arg:str:output:the MuSig2 output (address or descriptor)
    """
    from .app import recovery
    with clear_errors():
        out = recovery.recovery_output(plugin, wallet, output).output
        coins, heights, tip = await recovery.coins_and_heights(plugin, wallet, out)
    return {"descriptor": out.descriptor, "recovery": out.recovery.describe(),
            "blocks": out.recovery.blocks, "chain_height": tip,
            "coins": recovery.plan(out, coins, heights, tip)}


@plugin_command('wp', PLUGIN_NAME)
async def recover(self: "Commands", output, destination=None, fee=None, feerate=None,
                  password=None, wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Spend a MuSig2 output's coins through its recovery leaf (script path), once the timelock
    has passed; refused before that, naming the height from which it is possible. Signs with this
    wallet's participant key. Funder leaf: returns the complete transaction (then broadcast it).
    k-of-n leaf: returns the PSBT for the other signers (recovery_sign).
    arg:str:output:the MuSig2 output (address or descriptor)
    arg:str:destination:where the coins go (default: a receiving address of this wallet)
    arg:int:fee:absolute fee in satoshis
    arg:float:feerate:fee rate in sat/vbyte (instead of fee)
    """
    from .app import recovery
    with clear_errors():
        if (fee is None) == (feerate is None):
            raise UserFacingException("BadArgument: give exactly one of fee and feerate")
        return await recovery.recover(
            plugin, wallet, password, str(output), destination=destination,
            fee_sats=int(fee) if fee is not None else None,
            feerate_sat_vb=float(feerate) if feerate is not None else None)


@plugin_command('wp', PLUGIN_NAME)
async def recovery_sign(self: "Commands", psbt, password=None, wallet=None,
                        plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """A co-signer of a k-of-n recovery leaf: review the recovery PSBT (outputs, fee, the leaf,
    computed from the transaction) and add this wallet's tapscript signature. When k signatures
    are in, the transaction is finalized too.
    arg:str:psbt:the recovery PSBT (base64 or hex)
    """
    from .app import recovery
    from .wallet_bridge import parse_psbt
    with clear_errors():
        return recovery.sign(plugin, wallet, password, parse_psbt(psbt))


@plugin_command('', PLUGIN_NAME)
async def recovery_finalize(self: "Commands", psbt, wallet=None,
                            plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Build the script-path witnesses from the signatures in a recovery PSBT.
    arg:str:psbt:the recovery PSBT with enough signatures (base64 or hex)
    """
    from .wallet_bridge import finalize_recovery, parse_psbt
    with clear_errors():
        final = finalize_recovery(parse_psbt(psbt))
    return {"tx": final.serialize(), "txid": final.txid()}
