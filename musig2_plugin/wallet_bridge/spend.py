"""Spending MuSig2 coins with Electrum's own transaction code.

Build: a PartialTransaction whose MuSig2 inputs carry their witness UTXO
(amount + script: BIP-341 signs every input's amount and script, so a signer
without them cannot know what it signs) and the BIP-373 participant field.

Sighash: ``Transaction.serialize_preimage`` (Electrum's BIP-341 code) tagged
with "TapSighash", exactly as Electrum's own ``sign_txin`` does it for taproot.

Review (co-signer): everything a request says is re-derived from the PSBT
itself: which inputs are MuSig2 and whose, every sighash, the amounts, the
fee. A claimed message that differs, an input without amount or script, a
participant list that does not produce the spent script: all refused.

Finalize: the 64-byte aggregate signature is verified under Q, placed in
``tap_key_sig``; Electrum 4.8 has no finalizer for taproot key-path inputs
(its TRDescriptor cannot be satisfied), so we write the one-item witness and
then let Electrum's ``finalize_psbt`` clear the PSBT fields and check completeness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from electrum import bitcoin
from electrum.bitcoin import construct_witness
from electrum.transaction import (PartialTransaction, PartialTxInput, PartialTxOutput,
                                  SighashCache, Sighash, TxOutpoint, TxOutput,
                                  check_scriptpubkey_template_and_dust)
from electrum_ecc.util import bip340_tagged_hash

from .. import crypto
from ..foundation.constants import (MAX_PSBT_BYTES, MAX_SPEND_INPUTS, MAX_SPEND_OUTPUTS,
                         TAPROOT_KEYPATH_WITNESS_SIZE)
from . import psbt_fields
from .errors import (BridgeError, InvalidFinalSignature, MalformedPsbt, MissingInputInfo,
                     NotAMusigInput, ParticipantMismatch, SighashMismatch,
                     SpendBuildError)
from .musig_output import MusigOutput

RBF_SEQUENCE = 0xFFFFFFFD


@dataclass(frozen=True)
class MusigCoin:
    """An unspent output of a MuSig2 output (as listed by the wallet's server)."""
    txid: str
    out_idx: int
    value_sats: int
    output: MusigOutput

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.out_idx}"


# --- building -----------------------------------------------------------------
def musig_txin(coin: MusigCoin) -> PartialTxInput:
    try:
        txid = bytes.fromhex(coin.txid)
    except ValueError as exc:
        raise SpendBuildError(f"bad txid {coin.txid!r}") from exc
    if len(txid) != 32 or not (0 <= coin.out_idx < 2**32) or coin.value_sats <= 0:
        raise SpendBuildError(f"bad coin {coin.outpoint}")
    txin = PartialTxInput(prevout=TxOutpoint(txid=txid, out_idx=coin.out_idx),
                          nsequence=RBF_SEQUENCE)
    txin.witness_utxo = TxOutput(scriptpubkey=coin.output.scriptpubkey, value=coin.value_sats)
    # Lets Electrum's own size estimator price our inputs (it has no taproot template).
    txin.witness_sizehint = TAPROOT_KEYPATH_WITNESS_SIZE
    psbt_fields.set_input_musig_info(txin, coin.output)
    return txin


def payment_output(address: str, value: int) -> PartialTxOutput:
    if not bitcoin.is_address(address):
        raise SpendBuildError(f"not an address of this network: {address!r}")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise SpendBuildError(f"bad amount {value!r} for {address}")
    out = PartialTxOutput.from_address_and_value(address, value)
    try:
        check_scriptpubkey_template_and_dust(out.scriptpubkey, value)
    except Exception as exc:
        raise SpendBuildError(str(exc)) from exc
    return out


def build_spend(coins: Sequence[MusigCoin], outputs: Sequence[tuple[str, int]], *,
                fee_sats: Optional[int] = None, feerate_sat_vb: Optional[float] = None,
                change_address: Optional[str] = None, locktime: int = 0,
                change_musig: Optional[MusigOutput] = None) -> PartialTransaction:
    """A PSBT spending ``coins`` to ``outputs`` (address, sats), with an exact fee or a feerate.

    Whatever is left beyond outputs + fee goes to ``change_address``; without one
    the leftover must be zero (we never silently turn change into fee).
    """
    if not coins:
        raise SpendBuildError("no MuSig2 coins to spend")
    if len(coins) > MAX_SPEND_INPUTS or len(outputs) + 1 > MAX_SPEND_OUTPUTS:
        raise SpendBuildError("too many inputs or outputs")
    if len({c.outpoint for c in coins}) != len(coins):
        raise SpendBuildError("the same coin is listed twice")
    if (fee_sats is None) == (feerate_sat_vb is None):
        raise SpendBuildError("give exactly one of fee_sats and feerate_sat_vb")
    if fee_sats is not None and (not isinstance(fee_sats, int) or fee_sats < 0):
        raise SpendBuildError(f"bad fee {fee_sats!r}")
    if feerate_sat_vb is not None and not (0 < feerate_sat_vb <= 10_000):
        raise SpendBuildError(f"bad feerate {feerate_sat_vb!r}")
    txins = [musig_txin(c) for c in coins]
    txouts = [payment_output(a, v) for a, v in outputs]
    total_in = sum(c.value_sats for c in coins)
    total_out = sum(o.value for o in txouts)

    def assemble(extra: list[PartialTxOutput]) -> PartialTransaction:
        tx = PartialTransaction.from_io(list(txins), txouts + extra, locktime=locktime,
                                        version=2)
        return tx

    if fee_sats is None:
        probe_change = [payment_output(change_address, 1_000_000)] if change_address else []
        vsize = assemble(probe_change).estimated_size()
        fee_sats = math.ceil(feerate_sat_vb * vsize)
        if change_address and total_in - total_out - fee_sats < _dust(change_address):
            # Without the change output the tx is smaller: re-price it.
            vsize = assemble([]).estimated_size()
            fee_sats = math.ceil(feerate_sat_vb * vsize)
            change_address = None
            if total_in - total_out - fee_sats >= 0:
                fee_sats = total_in - total_out   # the dust leftover joins the fee, explicitly
    change = total_in - total_out - fee_sats
    if change < 0:
        raise SpendBuildError(f"inputs ({total_in} sat) do not cover outputs ({total_out} sat) "
                              f"plus fee ({fee_sats} sat)")
    extra: list[PartialTxOutput] = []
    if change > 0:
        if not change_address:
            raise SpendBuildError(f"{change} sat would be left over: give a change address")
        ch = payment_output(change_address, change)
        ch.is_change = True
        extra.append(ch)
    tx = assemble(extra)
    if change_musig is not None:
        for i, o in enumerate(tx.outputs()):
            if o.scriptpubkey == change_musig.scriptpubkey:
                psbt_fields.set_output_musig_info(o, change_musig, i)
    return tx


def _dust(address: str) -> int:
    """Electrum's dust limit for an address's script type (same table as its own check)."""
    from electrum import transaction as t
    spk = bitcoin.address_to_script(address)
    for template, limit in ((t.SCRIPTPUBKEY_TEMPLATE_P2PKH, bitcoin.DUST_LIMIT_P2PKH),
                            (t.SCRIPTPUBKEY_TEMPLATE_P2SH, bitcoin.DUST_LIMIT_P2SH),
                            (t.SCRIPTPUBKEY_TEMPLATE_P2WSH, bitcoin.DUST_LIMIT_P2WSH),
                            (t.SCRIPTPUBKEY_TEMPLATE_P2WPKH, bitcoin.DUST_LIMIT_P2WPKH),
                            (t.SCRIPTPUBKEY_TEMPLATE_ANYSEGWIT, bitcoin.DUST_LIMIT_UNKNOWN_SEGWIT)):
        if t.match_script_against_template(spk, template):
            return limit
    raise SpendBuildError(f"unsupported change address {address!r}")


# --- parsing and sighashes ------------------------------------------------------
def parse_psbt(data) -> PartialTransaction:
    """A PSBT (base64, hex or bytes) from a peer or a file, bounded and with typed errors."""
    if isinstance(data, str):
        data = data.strip()
    if not data or len(data) > MAX_PSBT_BYTES * 2:
        raise MalformedPsbt("empty or oversized PSBT")
    try:
        tx = PartialTransaction.from_raw_psbt(data)
    except Exception as exc:   # Electrum raises a zoo of exceptions on bad input
        raise MalformedPsbt(f"not a valid PSBT: {exc}") from exc
    if len(tx.inputs()) > MAX_SPEND_INPUTS or len(tx.outputs()) > MAX_SPEND_OUTPUTS:
        raise MalformedPsbt("too many inputs or outputs")
    if not tx.inputs() or not tx.outputs():
        raise MalformedPsbt("a transaction needs inputs and outputs")
    return tx


def psbt_base64(tx: PartialTransaction) -> str:
    import base64
    return base64.b64encode(tx.serialize_as_bytes(force_psbt=True)).decode("ascii")


def check_input_info(tx: PartialTransaction) -> None:
    """Every input's amount and script, or MissingInputInfo naming the first that lacks one."""
    for i, txin in enumerate(tx.inputs()):
        if txin.value_sats() is None:
            raise MissingInputInfo(i, "the PSBT does not carry this input's amount")
        if not txin.scriptpubkey:
            raise MissingInputInfo(i, "the PSBT does not carry this input's script")


def keypath_sighash(tx: PartialTransaction, input_index: int,
                    cache: Optional[SighashCache] = None) -> bytes:
    """BIP-341 key-path sighash of one input, by Electrum's serialize_preimage."""
    if cache is None or cache._witver1 is None:
        check_input_info(tx)     # once per cache: the shared digests need every amount/script
    txin = tx.inputs()[input_index]
    if not txin.is_taproot():
        raise NotAMusigInput(input_index, "not a taproot input")
    if txin.sighash not in (None, Sighash.DEFAULT):
        raise NotAMusigInput(input_index, "only SIGHASH_DEFAULT is signed for MuSig2 inputs")
    try:
        pre = tx.serialize_preimage(input_index, sighash_cache=cache)
    except Exception as exc:
        raise MissingInputInfo(input_index, f"cannot compute the sighash: {exc}") from exc
    return bip340_tagged_hash(b"TapSighash", pre)


def musig_inputs(tx: PartialTransaction) -> dict[int, MusigOutput]:
    """The inputs that carry a BIP-373 participant field, checked against their scripts."""
    found = {}
    for i, txin in enumerate(tx.inputs()):
        out = psbt_fields.input_musig_output(txin, i)
        if out is None:
            continue
        if txin.scriptpubkey is None:
            raise MissingInputInfo(i, "the PSBT does not carry this input's script")
        if txin.scriptpubkey != out.scriptpubkey:
            raise ParticipantMismatch(i, "participant keys do not produce the script this "
                                         "input spends")
        found[i] = out
    return found


def sighashes(tx: PartialTransaction) -> dict[int, bytes]:
    """Input index -> BIP-341 sighash, for every MuSig2 input."""
    check_input_info(tx)
    cache = SighashCache()
    return {i: keypath_sighash(tx, i, cache) for i in musig_inputs(tx)}


# --- co-signer review -------------------------------------------------------------
@dataclass
class ReviewedOutput:
    address: Optional[str]
    value_sats: int
    script_hex: str
    musig: Optional[MusigOutput] = None
    musig_path: Optional[tuple[int, ...]] = None   # BIP-328 path from the aggregate, () if none


@dataclass
class SpendReview:
    """What a co-signer is asked to sign, computed from the transaction only."""
    txid: str
    inputs: list[dict] = field(default_factory=list)
    outputs: list[ReviewedOutput] = field(default_factory=list)
    fee_sats: int = 0
    total_in_sats: int = 0
    messages: dict[int, bytes] = field(default_factory=dict)   # inputs we will sign

    def to_json(self) -> dict:
        return {"txid": self.txid, "fee_sats": self.fee_sats, "total_in_sats": self.total_in_sats,
                "inputs": self.inputs,
                "outputs": [{"address": o.address, "value_sats": o.value_sats,
                             "script": o.script_hex,
                             "musig_descriptor": o.musig.descriptor if o.musig else None,
                             "musig_derivation": (list(o.musig_path) if o.musig_path
                                                  else None)}
                            for o in self.outputs],
                "sign_inputs": {str(i): m.hex() for i, m in sorted(self.messages.items())}}


def review_spend(tx: PartialTransaction, my_pubkey: bytes,
                 claimed: Mapping[int, bytes]) -> SpendReview:
    """Check a spend request against its PSBT; return what the user must approve.

    ``claimed`` maps input index -> the 32-byte message the requester wants signed.
    Refuses (typed errors) unless each claimed input is a MuSig2 input that
    includes ``my_pubkey`` and each message is that input's BIP-341 sighash.
    """
    if not claimed:
        raise BridgeError("the request names no input to sign")
    check_input_info(tx)
    musig = musig_inputs(tx)
    cache = SighashCache()
    review = SpendReview(txid=tx.txid() or "")
    for i, msg in sorted(claimed.items()):
        if not isinstance(i, int) or not 0 <= i < len(tx.inputs()):
            raise BridgeError(f"the request names input {i!r}, which does not exist")
        if i not in musig:
            raise NotAMusigInput(i, "the request asks to sign an input without MuSig2 "
                                    "participant keys")
        if musig[i].signer_index_of(my_pubkey) is None:
            raise ParticipantMismatch(i, "our participant key is not among this input's keys")
        if not isinstance(msg, (bytes, bytearray)) or len(msg) != 32:
            raise SighashMismatch(i, "the message to sign is not 32 bytes")
        actual = keypath_sighash(tx, i, cache)
        if bytes(msg) != actual:
            raise SighashMismatch(i, "the message to sign is not this transaction's sighash")
        review.messages[i] = actual
    total_in = 0
    for i, txin in enumerate(tx.inputs()):
        total_in += txin.value_sats()
        review.inputs.append({"prevout": txin.prevout.to_str(), "value_sats": txin.value_sats(),
                              "address": txin.address, "musig": i in musig,
                              "ours": (i in musig
                                       and musig[i].signer_index_of(my_pubkey) is not None),
                              # Every co-signer sees the way out of each input it signs for.
                              "descriptor": musig[i].descriptor if i in musig else None,
                              "recovery": (musig[i].recovery.describe()
                                           if i in musig and musig[i].recovery else None)})
    total_out = 0
    for i, o in enumerate(tx.outputs()):
        total_out += o.value
        info = psbt_fields.output_musig_info(o, i)
        review.outputs.append(ReviewedOutput(address=o.address, value_sats=o.value,
                                             script_hex=o.scriptpubkey.hex(),
                                             musig=info.output if info else None,
                                             musig_path=info.path if info else None))
    if total_out > total_in:
        raise SpendBuildError("outputs exceed inputs")
    review.total_in_sats = total_in
    review.fee_sats = total_in - total_out
    return review


# --- final signature, finalize, broadcast -------------------------------------------
def attach_signature(tx: PartialTransaction, input_index: int, sig64: bytes, *,
                     musig: Optional[dict] = None, cache: Optional[SighashCache] = None) -> None:
    """Verify the aggregate signature under Q and the input's sighash, then set tap_key_sig.

    ``musig``/``cache`` let a caller signing many inputs compute them once (else O(n^2))."""
    musig = musig_inputs(tx) if musig is None else musig
    if input_index not in musig:
        raise NotAMusigInput(input_index, "not a MuSig2 input")
    if not isinstance(sig64, (bytes, bytearray)) or len(sig64) != 64:
        raise InvalidFinalSignature(input_index, "a key-path signature is 64 bytes")
    msg = keypath_sighash(tx, input_index, cache)
    if not crypto.schnorr_verify(musig[input_index].xonly_output_key, msg, bytes(sig64)):
        raise InvalidFinalSignature(input_index,
                                    "the signature does not verify under the output key")
    tx.inputs()[input_index].tap_key_sig = bytes(sig64)
    tx.invalidate_ser_cache()


def finalize(tx: PartialTransaction) -> PartialTransaction:
    """Write key-path witnesses from tap_key_sig and let Electrum finalize the PSBT."""
    for i in musig_inputs(tx):
        txin = tx.inputs()[i]
        if txin.witness is not None:
            continue
        if txin.tap_key_sig is None or len(txin.tap_key_sig) != 64:
            raise InvalidFinalSignature(i, "no aggregate signature yet")
        txin.script_sig = b""
        txin.witness = construct_witness([txin.tap_key_sig])
    tx.finalize_psbt()
    tx.invalidate_ser_cache()
    if not tx.is_complete():
        raise BridgeError("the transaction is not complete: some inputs are unsigned")
    return tx


async def broadcast(wallet, tx: PartialTransaction) -> str:
    """Send through the wallet's own network connection; record it in the wallet."""
    from electrum.network import TxBroadcastError
    from .errors import BroadcastError
    if not tx.is_complete():
        raise BroadcastError("the transaction is not complete")
    network = getattr(wallet, "network", None)
    if network is None:
        raise BroadcastError("the wallet is offline")
    try:
        await network.broadcast_transaction(tx)
    except TxBroadcastError as exc:
        raise BroadcastError(exc.get_message_for_gui()) from exc
    except Exception as exc:
        raise BroadcastError(str(exc) or type(exc).__name__) from exc
    try:
        wallet.adb.add_transaction(tx)
    except Exception as exc:   # already sent: the server will tell the wallet about it anyway
        import logging
        logging.getLogger(__name__).info("adding the broadcast tx to the wallet: %r", exc)
    return tx.txid()
