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

from typing import TYPE_CHECKING, Any, Optional

from electrum.commands import plugin_command
from electrum.util import UserFacingException

from .commands import _clear_errors
from .plugin import PLUGIN_NAME

if TYPE_CHECKING:
    from electrum.commands import Commands

    from .plugin import Musig2Plugin


def _recovery_output(plugin, wallet, ref: str):
    from .wallet_bridge import NotAMusigInput
    stored = plugin.vaults(wallet).find(str(ref))
    if stored.output.recovery is None:
        raise NotAMusigInput(0, "this MuSig2 output has no recovery leaf")
    return stored


async def _coins_and_heights(plugin, wallet, out):
    from .wallet_bridge import NoCoins, Offline
    watcher = plugin.watcher
    if watcher is None:
        raise Offline("this wallet is offline: MuSig2 outputs are not being followed")
    watcher.watch(out)
    await watcher.wait_synced(timeout=30)
    coins = watcher.coins(out)
    if not coins:
        raise NoCoins("this MuSig2 output holds no coins")
    return coins, watcher.coin_heights(out), int(wallet.adb.get_local_height())


def _plan(out, coins, heights, tip) -> list[dict[str, Any]]:
    from .wallet_bridge import recovery_height
    rows = []
    for c in coins:
        opens = recovery_height(heights.get(c.outpoint, 0), out)
        rows.append({"outpoint": c.outpoint, "value_sats": c.value_sats,
                     "height": heights.get(c.outpoint, 0), "recoverable_from_height": opens,
                     "recoverable_now": opens is not None and tip + 1 >= opens})
    return rows


@plugin_command('w', PLUGIN_NAME)
async def recovery_backup(self: "Commands", output, wallet=None,
                          plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """The descriptor to back up for a MuSig2 output. Your seed plus this text restore the
    output, its cooperative (key) path and its recovery (script) path.
    arg:str:output:the MuSig2 output (address or descriptor)
    """
    with _clear_errors():
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
    with _clear_errors():
        out = _recovery_output(plugin, wallet, output).output
        coins, heights, tip = await _coins_and_heights(plugin, wallet, out)
    return {"descriptor": out.descriptor, "recovery": out.recovery.describe(),
            "blocks": out.recovery.blocks, "chain_height": tip,
            "coins": _plan(out, coins, heights, tip)}


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
    from .wallet_bridge import (ParticipantMismatch, build_recovery_spend, check_mature,
                                finalize_recovery, psbt_base64, recovery_status,
                                review_recovery, sign_recovery)
    with _clear_errors():
        me = plugin.participant_key(wallet, password).pubkey
        out = _recovery_output(plugin, wallet, output).output
        if me not in out.recovery.signers:
            raise ParticipantMismatch(0, "this output's recovery leaf does not take your key")
        if (fee is None) == (feerate is None):
            raise UserFacingException("BadArgument: give exactly one of fee and feerate")
        coins, heights, tip = await _coins_and_heights(plugin, wallet, out)
        check_mature(coins, heights, tip)
        tx = build_recovery_spend(coins, destination or wallet.get_receiving_address(),
                                  fee_sats=int(fee) if fee is not None else None,
                                  feerate_sat_vb=float(feerate) if feerate is not None else None)
        sign_recovery(tx, plugin.participant_secret(wallet, password))
        result: dict[str, Any] = {"review": review_recovery(tx, me), "psbt": psbt_base64(tx),
                                  "complete": False, "tx": None, "txid": tx.txid()}
        if all(len(s.signed_by) >= s.required for s in recovery_status(tx)):
            final = finalize_recovery(tx)
            result.update(complete=True, tx=final.serialize(), txid=final.txid())
    return result


@plugin_command('wp', PLUGIN_NAME)
async def recovery_sign(self: "Commands", psbt, password=None, wallet=None,
                        plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """A co-signer of a k-of-n recovery leaf: review the recovery PSBT (outputs, fee, the leaf,
    computed from the transaction) and add this wallet's tapscript signature. When k signatures
    are in, the transaction is finalized too.
    arg:str:psbt:the recovery PSBT (base64 or hex)
    """
    from .wallet_bridge import (finalize_recovery, parse_psbt, psbt_base64, recovery_status,
                                review_recovery, sign_recovery)
    with _clear_errors():
        me = plugin.participant_key(wallet, password).pubkey
        tx = parse_psbt(psbt)
        review = review_recovery(tx, me)
        sign_recovery(tx, plugin.participant_secret(wallet, password))
        result: dict[str, Any] = {"review": review, "psbt": psbt_base64(tx), "complete": False,
                                  "tx": None, "txid": tx.txid()}
        if all(len(s.signed_by) >= s.required for s in recovery_status(tx)):
            final = finalize_recovery(tx)
            result.update(complete=True, tx=final.serialize(), txid=final.txid())
    return result


@plugin_command('', PLUGIN_NAME)
async def recovery_finalize(self: "Commands", psbt, wallet=None,
                            plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Build the script-path witnesses from the signatures in a recovery PSBT.
    arg:str:psbt:the recovery PSBT with enough signatures (base64 or hex)
    """
    from .wallet_bridge import finalize_recovery, parse_psbt
    with _clear_errors():
        final = finalize_recovery(parse_psbt(psbt))
    return {"tx": final.serialize(), "txid": final.txid()}


def recovery_rows(plugin, wallet) -> Optional[list[dict[str, Any]]]:
    """For the Qt outputs overview: per recovery output, its coins' recovery heights (sync)."""
    watcher = plugin.watcher
    if watcher is None:
        return None
    tip = int(wallet.adb.get_local_height())
    rows = []
    for stored in plugin.vaults(wallet).all():
        out = stored.output
        if out.recovery is None:
            continue
        coins = watcher.coins(out)
        rows.append({"address": out.address(), "recovery": out.recovery.describe(),
                     "coins": _plan(out, coins, watcher.coin_heights(out), tip) if coins else []})
    return rows
