"""Plugin commands, reachable as ``electrum [--regtest] <command>`` through a running daemon.

Electrum names a plugin command ``<plugin name>_<function name>``, so ``status`` here is the
command ``musig2_plugin_status``. Every command gets the loaded plugin object as ``plugin``.
Imported by the package ``__init__`` only when Electrum is importable.

Every command answers JSON. Every refusal raises Electrum's ``UserFacingException`` whose text
starts with our error's class name (``SighashMismatch: input 1: ...``), so scripts can tell
refusals apart and users read a sentence, never a traceback. Amounts are integer satoshis.

The PSBT commands (``psbt_*``) are the file-based path: a PSBT carrying BIP-373 fields goes from
participant to participant (round 1: ``psbt_nonce``, round 2: ``psbt_sign``), anyone combines and
finalizes. Secret nonces stay in the daemon's memory between the two rounds, never on disk.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

from electrum.commands import plugin_command
from electrum.util import UserFacingException

from .foundation.errors import BadArgument, Musig2Error
from .plugin import PLUGIN_NAME

if TYPE_CHECKING:
    from electrum.commands import Commands
    from electrum.wallet import Abstract_Wallet

    from .plugin import Musig2Plugin


@contextmanager
def clear_errors():
    """Our typed errors (one root, Musig2Error) -> the user's sentence (app.user_message)."""
    from .app import user_message
    try:
        yield
    except UserFacingException:
        raise
    except Musig2Error as exc:
        raise UserFacingException(user_message(exc)) from None


def _json_list(value: Any, what: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                got = json.loads(text)
            except ValueError:
                raise BadArgument(f"{what} is not valid JSON") from None
            if isinstance(got, list):
                return got
        return [part.strip() for part in text.split(",") if part.strip()]
    raise BadArgument(f"{what} must be a list")


def _hex_key(text: Any, i: int) -> bytes:
    try:
        key = bytes.fromhex(str(text).strip())
    except ValueError:
        raise BadArgument(f"key {i} is not hex") from None
    if len(key) != 33:
        raise BadArgument(f"key {i} is not a 33-byte compressed public key")
    return key


def _payees(outputs: Any) -> list[tuple[str, int]]:
    """``[[address, sats], ...]`` (JSON) or ``address:sats,address:sats``."""
    items = _json_list(outputs, "outputs")
    result = []
    for i, item in enumerate(items):
        if isinstance(item, str) and ":" in item:
            item = item.rsplit(":", 1)
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise BadArgument(f"output {i} must be [address, satoshis]")
        try:
            amount = int(item[1])
        except (TypeError, ValueError):
            raise BadArgument(f"output {i} amount is not an integer") from None
        result.append((str(item[0]), amount))
    if not result:
        raise BadArgument("no outputs given")
    return result


@plugin_command('', PLUGIN_NAME)
async def status(self: "Commands", plugin: "Musig2Plugin" = None,
                 wallet: Optional["Abstract_Wallet"] = None) -> dict[str, Any]:
    """Show the MuSig2 plugin's version, whether its co-signing node runs, and the wallet in use.
    Works without a wallet; with -w it reports that wallet, its participant key and whether that
    key is known (participant_key_state: known, or locked/unsupported with what to do).
    """
    loaded = list(self.daemon.get_wallets().values()) if self.daemon is not None else []
    result = plugin.status(wallet=wallet, loaded_wallets=loaded)
    if wallet is None and len(loaded) == 1:
        wallet = loaded[0]
    if wallet is not None:
        try:
            key, key_state = plugin.participant_key_state(wallet)
        except Exception as exc:   # unsupported wallet types still get a status
            key, key_state = None, f"unavailable: {type(exc).__name__}: {exc}"
        result["participant_key"] = key.pubkey.hex() if key else None
        # "known", "locked: <what to do>", "unsupported: <why>" or "unavailable: <why>"
        result["participant_key_state"] = key_state
        if key is None and not key_state.startswith("locked"):
            result["participant_key_error"] = key_state.split(": ", 1)[1]
        c = plugin.cosigners.get(id(wallet))
        result["node"] = c.status() if c is not None else None
        try:
            result["musig_outputs"] = len(plugin.vaults(wallet).all())
        except Exception as exc:
            result["musig_outputs_error"] = f"{type(exc).__name__}: {exc}"
    return result


@plugin_command('wp', PLUGIN_NAME)
async def participant_key(self: "Commands", password=None, wallet=None,
                          plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Show this wallet's MuSig2 participant key: the public key other co-signers use.
    It is derived from the wallet's seed at <keystore>/327h/0h, so a restore from seed recovers it.
    """
    with clear_errors():
        key = plugin.participant_key(wallet, password)
    return {"pubkey": key.pubkey.hex(), "path": key.path,
            "keystore_xpub": key.keystore_xpub}


@plugin_command('wp', PLUGIN_NAME)
async def create_output(self: "Commands", keys=None, descriptor=None, label="", recovery=None,
                        password=None, wallet=None,
                        plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Create a MuSig2 output (aggregate-key taproot address) with other participants' keys.
    Your own participant key is added if missing. The output is remembered in this wallet.
    Back up the descriptor it prints: with your seed it is all you need to recover (recovery_backup).
    arg:str:keys:the other participants' public keys (hex), comma separated or a JSON list
    arg:str:descriptor:instead of keys, a tr(musig(...)) descriptor that includes your key
    arg:str:label:a label for this output
    arg:str:recovery:with keys: the recovery policy, funder[:N] (you alone after N blocks) or k-of-n[:N]; with descriptor: the policy its creator announced (funder:<key>:N or k-of-n:N), refused if the tree differs
    """
    with clear_errors():
        me = plugin.participant_key(wallet, password).pubkey
        if (keys is None) == (descriptor is None):
            raise BadArgument("give either keys or descriptor")
        given = (None if keys is None else
                 [_hex_key(k, i) for i, k in enumerate(_json_list(keys, "keys"))])
        stored = plugin.create_output(wallet, me, keys=given,
                                      descriptor=None if descriptor is None else str(descriptor),
                                      label=label or "", recovery=recovery)
    result = stored.to_json()
    result["backup"] = ("back up this descriptor (with your seed it recovers the output and "
                        "both spend paths): " + stored.output.descriptor)
    return result


@plugin_command('w', PLUGIN_NAME)
async def list_outputs(self: "Commands", wallet=None,
                       plugin: "Musig2Plugin" = None) -> list[dict[str, Any]]:
    """List this wallet's MuSig2 outputs with balance and coins (followed on the wallet's server).
    Amounts in satoshis.
    """
    with clear_errors():
        stored = plugin.vaults(wallet).all()
        watcher = plugin.watcher
        if watcher is not None:
            for s in stored:
                watcher.watch(s.output)
            await watcher.wait_synced(timeout=20)
        result = []
        for s in stored:
            entry = s.to_json()
            if watcher is not None:
                entry["balance"] = watcher.balance(s.output)
                heights = watcher.coin_heights(s.output)
                entry["coins"] = [{"outpoint": c.outpoint, "value_sats": c.value_sats,
                                   "height": heights.get(c.outpoint, 0)}
                                  for c in watcher.coins(s.output)]
            else:
                entry["balance"] = None
                entry["coins"] = None
            result.append(entry)
    return result


@plugin_command('wp', PLUGIN_NAME)
async def request_spend(self: "Commands", outputs, from_output=None, fee=None, feerate=None,
                        change_address=None, announce=None, password=None, wallet=None,
                        plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Build a transaction spending MuSig2 coins; returns the PSBT (BIP-373 fields) and sighashes.
    With the co-signing node running, the request is also announced to the other participants
    (pushed to them, stored in the DHT) and this wallet joins it; follow it with session_status.
    arg:str:outputs:payees as a JSON list [[address, satoshis], ...] or address:sats,address:sats
    arg:str:from_output:the MuSig2 output(s) to spend from (address or descriptor, comma separated); default: all with coins
    arg:int:fee:absolute fee in satoshis
    arg:float:feerate:fee rate in sat/vbyte (instead of fee)
    arg:str:change_address:where change goes (default: a receiving address of this wallet)
    arg:bool:announce:announce through the co-signing node (default: when it runs)
    """
    from .app import prepare_own_spend
    from .wallet_bridge import psbt_base64
    with clear_errors():
        me = plugin.participant_key(wallet, password).pubkey
        try:
            fee_sats = int(fee) if fee is not None else None
            feerate_sat_vb = float(feerate) if feerate is not None else None
        except (TypeError, ValueError):
            raise BadArgument("fee must be whole satoshis and feerate a number of sat/vbyte") \
                from None
        tx = await plugin.build_spend_request(
            wallet, password, _payees(outputs),
            from_refs=_json_list(from_output, "from_output") if from_output else None,
            fee_sats=fee_sats, feerate_sat_vb=feerate_sat_vb, change_address=change_address)
        own = prepare_own_spend(tx, me)      # sighashes and review: computed once, here
        result = {"psbt": psbt_base64(tx), "txid": tx.txid(),
                  "sighashes": {str(i): m.hex() for i, m in sorted(own.sighashes.items())},
                  "review": own.review.to_json(), "request_id": None}
        running = id(wallet) in plugin.cosigners and plugin.cosigners[id(wallet)].is_running()
        if announce is None:
            announce = running
        if announce:
            state = await plugin.cosigner(wallet).request_spend(tx, prepared=own)
            result["request_id"] = state.key.hex()
    return result


def _claimed(sighashes_arg) -> Optional[dict[int, bytes]]:
    if sighashes_arg is None:
        return None
    if isinstance(sighashes_arg, str):
        try:
            sighashes_arg = json.loads(sighashes_arg)
        except ValueError:
            raise BadArgument("sighashes must be a JSON object") from None
    if not isinstance(sighashes_arg, dict):
        raise BadArgument("sighashes must map input index to hex")
    try:
        return {int(k): bytes.fromhex(v) for k, v in sighashes_arg.items()}
    except (TypeError, ValueError):
        raise BadArgument("sighashes must map input index to hex") from None


@plugin_command('wp', PLUGIN_NAME)
async def psbt_review(self: "Commands", psbt, sighashes=None, password=None, wallet=None,
                      plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """What signing this PSBT would approve: outputs, amounts and fee computed from the transaction.
    Refuses a PSBT whose inputs lack amount or script, or whose claimed sighashes differ.
    arg:str:psbt:the PSBT (base64 or hex)
    arg:str:sighashes:optional JSON object input index -> sighash hex, as claimed by the requester
    """
    from .app import review_psbt
    from .wallet_bridge import parse_psbt
    with clear_errors():
        me = plugin.participant_key(wallet, password).pubkey
        return review_psbt(parse_psbt(psbt), me, _claimed(sighashes)).to_json()


@plugin_command('wp', PLUGIN_NAME)
async def psbt_nonce(self: "Commands", psbt, sighashes=None, password=None, wallet=None,
                     plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Round 1: review the PSBT, then add this wallet's public nonces (BIP-373) to it.
    The secret nonces stay in this daemon's memory until psbt_sign.
    arg:str:psbt:the PSBT (base64 or hex)
    arg:str:sighashes:optional JSON object input index -> sighash hex, as claimed by the requester
    """
    from .wallet_bridge import parse_psbt, psbt_base64
    with clear_errors():
        signer = plugin.psbt_signer(wallet, password)
        tx = parse_psbt(psbt)
        review = signer.round1(tx, _claimed(sighashes))
    return {"psbt": psbt_base64(tx), "review": review.to_json()}


@plugin_command('wp', PLUGIN_NAME)
async def psbt_sign(self: "Commands", psbt, password=None, wallet=None,
                    plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Round 2: add this wallet's partial signatures; needs every participant's nonce in the PSBT.
    arg:str:psbt:the PSBT with all public nonces (base64 or hex)
    """
    from .wallet_bridge import parse_psbt, psbt_base64
    with clear_errors():
        signer = plugin.psbt_signer(wallet, password)
        tx = parse_psbt(psbt)
        signed = signer.round2(tx, lambda: plugin.participant_secret(wallet, password))
    return {"psbt": psbt_base64(tx), "signed_inputs": signed}


@plugin_command('', PLUGIN_NAME)
async def psbt_combine(self: "Commands", psbts, wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Merge PSBTs of the same transaction (each participant's nonces or partial signatures).
    arg:str:psbts:JSON list of PSBTs (base64 or hex)
    """
    from .app import combine_psbts
    from .wallet_bridge import MAX_COMBINED_PSBTS, psbt_base64
    with clear_errors():
        items = _json_list(psbts, "psbts")
        if not items or len(items) > MAX_COMBINED_PSBTS:
            raise BadArgument(f"give 1 to {MAX_COMBINED_PSBTS} PSBTs")
        combined = combine_psbts(items)
    return {"psbt": psbt_base64(combined)}


@plugin_command('', PLUGIN_NAME)
async def psbt_finalize(self: "Commands", psbt, wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Aggregate the partial signatures (naming any bad one), finalize; returns the raw transaction.
    arg:str:psbt:the PSBT with all partial signatures (base64 or hex)
    """
    from .wallet_bridge import aggregate_all, finalize, parse_psbt
    with clear_errors():
        tx = parse_psbt(psbt)
        aggregate_all(tx)
        final = finalize(tx)
    return {"tx": final.serialize(), "txid": final.txid()}


@plugin_command('w', PLUGIN_NAME)
async def broadcast(self: "Commands", tx, wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Broadcast a finalized MuSig2 spend through the wallet's own network connection.
    arg:str:tx:the raw transaction (hex) or a finalized PSBT
    """
    from electrum.transaction import tx_from_any
    from .wallet_bridge import MalformedPsbt, broadcast as bridge_broadcast
    with clear_errors():
        try:
            parsed = tx_from_any(str(tx))
        except Exception as exc:
            raise MalformedPsbt(f"not a transaction: {exc}") from None
        txid = await bridge_broadcast(wallet, parsed)
    return {"txid": txid}


# --- the co-signing node (DHT discovery + peer sessions) ------------------------------------
@plugin_command('wp', PLUGIN_NAME)
async def node_start(self: "Commands", port=None, bootstrap=None, dht=True, listen_host=None,
                     public_host=None, public_port=None, password=None,
                     wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Start this wallet's co-signing node (listens on 127.0.0.1 by default; joins the DHT).
    Its status says how it is reached (network: chain, listen, published endpoint).
    arg:int:port:TCP port for peer sessions (UDP for the DHT); default from settings, else the chain's default port (any free one if taken)
    arg:str:bootstrap:DHT peers to join, host:port,host:port (default from settings)
    arg:bool:dht:run a DHT node (default true)
    arg:str:listen_host:127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces); default from settings
    arg:str:public_host:host name or IP strangers connect to (port forward, server); default from settings
    arg:int:public_port:port strangers connect to (default: the listen port)
    """
    from .plugin import parse_peers
    with clear_errors():
        peers = parse_peers(bootstrap) if bootstrap is not None else None
        c = await plugin.start_node(wallet, password, port=None if port is None else int(port),
                                    bootstrap=peers, dht=bool(dht), host=listen_host,
                                    public_host=public_host, public_port=public_port)
    return c.status()


@plugin_command('', PLUGIN_NAME)
async def network(self: "Commands", mode=None, proxy=None, tor_control=None, wallet=None,
                  plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Show or set how the co-signing node reaches the network. A setting that would send traffic
    outside Electrum's (or the plugin's) proxy is refused and nothing is changed.
    arg:str:mode:auto (follow the proxy if one is set), direct (UDP DHT + TCP), or proxy (only through one)
    arg:str:proxy:the plugin's own SOCKS5 proxy, socks5:host:port ('none' clears it)
    arg:str:tor_control:Tor's control port (host:port on loopback) for an onion service ('none' clears it); password via setconfig plugins.musig2_plugin.tor_control_password, else cookie authentication
    """
    with clear_errors():
        if mode is None and proxy is None and tor_control is None:
            return plugin.network_status()
        return plugin.set_network(mode=mode, proxy=proxy, tor_control=tor_control)


@plugin_command('w', PLUGIN_NAME)
async def reach(self: "Commands", peers=None, wallet=None,
                plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Find out how peers reach this wallet's node and arrange it: peers dial it back (only a
    challenge signed by this node's key counts); when none can, it keeps a reservation at a
    relay found among them and advertises "reachable through that relay" (docs/network.md).
    arg:str:peers:peers to ask, host:port,host:port (default: the bootstrap peers and DHT contacts)
    """
    from .plugin import parse_peers
    with clear_errors():
        c = plugin.cosigner(wallet)
        asked = parse_peers(peers) if peers else plugin.bootstrap_peers()
        return await c.reach(asked)


@plugin_command('w', PLUGIN_NAME)
async def node_stop(self: "Commands", wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Stop this wallet's co-signing node (open sessions are dropped with their secret nonces)."""
    return {"stopped": await plugin.stop_node(wallet)}


@plugin_command('w', PLUGIN_NAME)
async def advertise(self: "Commands", tx_types=None, min_amount=None, max_amount=None,
                    nickname=None, fee=None, wallet=None,
                    plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Publish a signed 'advertise me' record in the DHT (defaults from the settings).
    arg:str:tx_types:accepted transaction types, comma separated (spend, swap, coinjoin, custody)
    arg:int:min_amount:smallest amount you co-sign, satoshis
    arg:int:max_amount:largest amount you co-sign, satoshis
    arg:str:nickname:shown to others
    arg:int:fee:your fee per signature, satoshis
    """
    overrides: dict[str, Any] = {}
    if tx_types is not None:
        overrides["tx_types"] = [t.strip() for t in str(tx_types).split(",") if t.strip()]
    for name, value in (("min_amount_sat", min_amount), ("max_amount_sat", max_amount),
                        ("fee_per_signature_sat", fee), ("nickname", nickname)):
        if value is not None:
            overrides[name] = value
    with clear_errors():
        try:
            ad = await plugin.advertise(wallet, **overrides)
        except ValueError as exc:     # records refuse bad types/ranges/nicknames with ValueError
            raise BadArgument(str(exc)) from None
    return _ad_json(ad)


@plugin_command('w', PLUGIN_NAME)
async def withdraw(self: "Commands", wallet=None, plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Withdraw this wallet's advertisement (a signed tombstone replaces it in the DHT)."""
    from .app import withdraw as app_withdraw
    with clear_errors():
        withdrawn = await app_withdraw(plugin.cosigner(wallet))
    return {"withdrawn": withdrawn}


def _ad_json(ad) -> dict[str, Any]:
    return {"pubkey": ad.owner.hex(), "nickname": ad.nickname,
            "tx_types": [t.value for t in ad.tx_types],
            "min_amount_sat": ad.min_amount_sat, "max_amount_sat": ad.max_amount_sat,
            "fee_per_signature_sat": ad.fee_per_signature_sat, "reputation": ad.reputation,
            "endpoint": f"{ad.endpoint.host}:{ad.endpoint.port}",
            # how this signer is reached: "direct", "relay" (then "relay_key"), or "onion"
            "path": ad.endpoint.kind.name.lower(),
            **({"relay_key": ad.endpoint.relay_key.hex()} if ad.endpoint.relay_key else {})}


@plugin_command('w', PLUGIN_NAME)
async def find_signers(self: "Commands", tx_type="spend", amount=None, wallet=None,
                       plugin: "Musig2Plugin" = None) -> list[dict[str, Any]]:
    """Advertised co-signers found in the DHT (best first), each checked against its signature.
    "observed" is this wallet's own count per signer: [sessions completed, failed on an invalid
    contribution, failed by a timeout our node saw] (never another node's claim).
    arg:str:tx_type:transaction type they must accept (default spend)
    arg:int:amount:amount (satoshis) they must accept
    """
    from .app import find_signers as app_find_signers
    with clear_errors():
        try:
            wanted = None if amount is None else int(amount)
        except (TypeError, ValueError):
            raise BadArgument("amount must be whole satoshis") from None
        ads = await app_find_signers(plugin.cosigner(wallet), tx_type, amount=wanted)
    observed = plugin.observed_reputation(wallet)
    return [dict(_ad_json(ad), observed=observed.get(ad.owner.hex(), [0, 0, 0])) for ad in ads]


@plugin_command('w', PLUGIN_NAME)
async def list_requests(self: "Commands", poll=True, wallet=None,
                        plugin: "Musig2Plugin" = None) -> list[dict[str, Any]]:
    """Signing requests addressed to this wallet (pushed to us, or found in the DHT), with the
    review computed from each transaction: outputs, amounts, fee; or why it was refused.
    arg:bool:poll:also look in the DHT for requests stored while we were away (default true)
    """
    with clear_errors():
        c = plugin.cosigner(wallet)
        if poll:
            await c.poll_requests()
        return [s.to_json() for s in sorted(c.requests.values(), key=lambda s: s.created)]


@plugin_command('w', PLUGIN_NAME)
async def approve(self: "Commands", request_id, wallet=None,
                  plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Approve a pending signing request and join its sessions; both rounds then run by themselves.
    arg:str:request_id:the request id from list_requests
    """
    with clear_errors():
        state = await plugin.cosigner(wallet).approve(request_id)
    return state.to_json()


@plugin_command('w', PLUGIN_NAME)
async def reject(self: "Commands", request_id, wallet=None,
                 plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Refuse a pending signing request (nothing is signed; the others' session will time out).
    arg:str:request_id:the request id from list_requests
    """
    with clear_errors():
        return plugin.cosigner(wallet).reject(request_id).to_json()


@plugin_command('w', PLUGIN_NAME)
async def session_status(self: "Commands", request_id, wallet=None,
                         plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Progress of a signing request: joined, rounds, signed inputs, final transaction, broadcast.
    arg:str:request_id:the request id
    """
    with clear_errors():
        return plugin.cosigner(wallet).get(request_id).to_json()


@plugin_command('w', PLUGIN_NAME)
async def broadcast_request(self: "Commands", request_id, wallet=None,
                            plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """Broadcast the finalized transaction of a signing request through the wallet's network.
    arg:str:request_id:the request id
    """
    with clear_errors():
        c = plugin.cosigner(wallet)
        state = c.get(request_id)
        if state.broadcast_txid:
            return {"txid": state.broadcast_txid}
        return {"txid": await c.broadcast(state)}


@plugin_command('w', PLUGIN_NAME)
async def export_psbt(self: "Commands", request_id, wallet=None,
                      plugin: "Musig2Plugin" = None) -> dict[str, Any]:
    """The PSBT of a signing request (with any aggregate signatures so far), to continue by file
    with the psbt_* commands, or to inspect with other tools (BIP-373 fields).
    arg:str:request_id:the request id
    """
    from .wallet_bridge import psbt_base64
    with clear_errors():
        state = plugin.cosigner(wallet).get(request_id)
        if state.tx is None:
            raise UserFacingException(f"Refused: this request has no usable PSBT ({state.error})")
        return {"psbt": psbt_base64(state.tx), "txid": state.txid}
