"""The recovery path of a wallet's MuSig2 outputs: when it opens, and building/signing it.

Shared by the plugin commands (recovery_commands.py) and the Qt recovery dialog, so
both refuse the same things with the same typed errors: an output without a leaf, a
leaf that does not take our key, a spend before the timelock has passed.
"""
from __future__ import annotations

from typing import Any, Optional

from ..wallet_bridge import (NoCoins, NotAMusigInput, Offline, ParticipantMismatch,
                             build_recovery_spend, check_mature, finalize_recovery, psbt_base64,
                             recovery_height, recovery_status, review_recovery, sign_recovery)


def recovery_output(plugin, wallet, ref: str):
    """The stored output named by ``ref``; refused unless it has a recovery leaf."""
    stored = plugin.vaults(wallet).find(str(ref))
    if stored.output.recovery is None:
        raise NotAMusigInput(0, "this MuSig2 output has no recovery leaf")
    return stored


async def coins_and_heights(plugin, wallet, out):
    """(coins, outpoint -> confirmation height, chain height) as the wallet's server says."""
    watcher = plugin.watcher
    if watcher is None:
        raise Offline("this wallet is offline: MuSig2 outputs are not being followed")
    watcher.watch(out)
    await watcher.wait_synced(timeout=30)
    coins = watcher.coins(out)
    if not coins:
        raise NoCoins("this MuSig2 output holds no coins")
    return coins, watcher.coin_heights(out), int(wallet.adb.get_local_height())


def plan(out, coins, heights, tip) -> list[dict[str, Any]]:
    """Per coin: its height and the first block height that may contain its recovery."""
    rows = []
    for c in coins:
        opens = recovery_height(heights.get(c.outpoint, 0), out)
        rows.append({"outpoint": c.outpoint, "value_sats": c.value_sats,
                     "height": heights.get(c.outpoint, 0), "recoverable_from_height": opens,
                     "recoverable_now": opens is not None and tip + 1 >= opens})
    return rows


def earliest_recovery(plugin, wallet, out) -> Optional[int]:
    """For the outputs overview (sync): the first height from which one coin can be recovered."""
    watcher = plugin.watcher
    if watcher is None or out.recovery is None:
        return None
    heights = watcher.coin_heights(out)
    opens = [recovery_height(heights.get(c.outpoint, 0), out) for c in watcher.coins(out)]
    opens = [h for h in opens if h is not None]
    return min(opens) if opens else None


def own_origin(plugin, wallet) -> Optional[tuple[bytes, tuple[int, ...]]]:
    """(root fingerprint, full path) of our participant key: keystore prefix + 327h/0h."""
    from electrum.bip32 import convert_bip32_strpath_to_intpath
    from ..wallet_bridge import PARTICIPANT_PATH
    ks = wallet.get_keystore()
    fp, prefix = ks.get_root_fingerprint(), ks.get_derivation_prefix()
    if not fp or prefix is None:
        return None
    return bytes.fromhex(fp), tuple(convert_bip32_strpath_to_intpath(prefix)) + PARTICIPANT_PATH


def _add_origin(plugin, wallet, tx, me) -> None:
    from ..wallet_bridge import add_own_derivation
    origin = own_origin(plugin, wallet)
    if origin is not None:
        add_own_derivation(tx, me, *origin)


def _result(tx, me) -> dict[str, Any]:
    result: dict[str, Any] = {"review": review_recovery(tx, me), "psbt": psbt_base64(tx),
                              "complete": False, "tx": None, "txid": tx.txid()}
    if all(len(s.signed_by) >= s.required for s in recovery_status(tx)):
        final = finalize_recovery(tx)
        result.update(complete=True, tx=final.serialize(), txid=final.txid())
    return result


async def recover(plugin, wallet, password: Optional[str], ref: str, *,
                  destination: Optional[str] = None, fee_sats: Optional[int] = None,
                  feerate_sat_vb: Optional[float] = None) -> dict[str, Any]:
    """Build the script-path sweep of an output's coins (refused before maturity) and sign it."""
    me = plugin.participant_key(wallet, password).pubkey
    out = recovery_output(plugin, wallet, ref).output
    if me not in out.recovery.signers:
        raise ParticipantMismatch(0, "this output's recovery leaf does not take your key")
    coins, heights, tip = await coins_and_heights(plugin, wallet, out)
    check_mature(coins, heights, tip)
    tx = build_recovery_spend(coins, destination or wallet.get_receiving_address(),
                              fee_sats=fee_sats, feerate_sat_vb=feerate_sat_vb)
    _add_origin(plugin, wallet, tx, me)
    sign_recovery(tx, plugin.participant_secret(wallet, password))
    return _result(tx, me)


def sign(plugin, wallet, password: Optional[str], tx) -> dict[str, Any]:
    """A k-of-n signer: review the recovery PSBT, add our signature, finalize when complete."""
    me = plugin.participant_key(wallet, password).pubkey
    review_recovery(tx, me)
    _add_origin(plugin, wallet, tx, me)
    sign_recovery(tx, plugin.participant_secret(wallet, password))
    return _result(tx, me)
