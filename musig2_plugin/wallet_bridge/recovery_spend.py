"""Script-path (recovery) spends of MuSig2 outputs with a timelocked recovery leaf.

Build: every input spends a coin of one recovery output, with nSequence = N
(BIP-68 relative lock in blocks, the leaf's ``older(N)``) and version 2; the
PSBT carries the leaf script, control block, merkle root, internal key and
participants (psbt_taptree.py), so any signer can check what it signs.

Sighash: BIP-342 script-path message. Electrum 4.8 only writes the key-path
message (spend type 0); for SIGHASH_DEFAULT that message ends with
``spend_type(1) | input_index(4)``, and BIP-342 differs only in spend type
2 (ext_flag 1) and the extension ``tapleaf_hash | key_version 0x00 |
codesep_pos 0xffffffff``. We take Electrum's message and apply exactly that.
The node's verdict on a real chain is the test of it (tests/edge_chain).

Maturity: the node refuses the spend before the coin is N blocks deep
("non-BIP68-final"); the plugin refuses earlier, with the height from which it
is possible (``recovery_height``), before anything is signed.

Signatures for k-of-n leaves travel in the PSBT (PSBT_IN_TAP_SCRIPT_SIG): the
recovery is the situation where the peer sessions may not work (a co-signer is
gone), a file passes through any channel, and each signer reviews the PSBT
itself (docs/recovery.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from electrum.bitcoin import construct_witness
from electrum.transaction import (PartialTransaction, PartialTxInput, SighashCache, Sighash,
                                  TxOutpoint, TxOutput)
from electrum_ecc.util import bip340_tagged_hash

from .. import crypto
from ..foundation.constants import MAX_SPEND_INPUTS
from . import psbt_fields, psbt_taptree
from .errors import (BridgeError, InvalidFinalSignature, MissingInputInfo, NotAMusigInput,
                     ParticipantMismatch, RecoveryNotMature, SpendBuildError)
from .musig_output import MusigOutput
from .spend import MusigCoin, payment_output, check_input_info, musig_inputs

SCRIPT_PATH_SPEND_TYPE = 2          # (ext_flag 1) * 2 + no annex
KEY_VERSION = b"\x00"               # BIP-342 key_version
NO_CODESEPARATOR = b"\xff\xff\xff\xff"


def recovery_height(coin_height: int, out: MusigOutput) -> Optional[int]:
    """The first block height whose block may contain the recovery spend (None: unconfirmed)."""
    if out.recovery is None:
        raise NotAMusigInput(0, "this output has no recovery leaf")
    if coin_height is None or coin_height <= 0:
        return None
    return coin_height + out.recovery.blocks


def check_mature(coins: Sequence[MusigCoin], heights: dict[str, int], chain_height: int) -> None:
    """RecoveryNotMature naming the first coin whose timelock has not passed at the next block."""
    for c in coins:
        opens = recovery_height(heights.get(c.outpoint, 0), c.output)
        if opens is None:
            raise RecoveryNotMature(f"coin {c.outpoint} is not confirmed yet: its recovery path "
                                    f"opens {c.output.recovery.blocks} blocks after it confirms")
        if chain_height + 1 < opens:
            raise RecoveryNotMature(
                f"coin {c.outpoint}: the recovery path opens at block {opens}; the chain is at "
                f"{chain_height} ({opens - chain_height - 1} more block(s) to wait)")


def recovery_txin(coin: MusigCoin) -> PartialTxInput:
    out = coin.output
    if out.recovery is None:
        raise SpendBuildError(f"coin {coin.outpoint}: its output has no recovery leaf")
    try:
        txid = bytes.fromhex(coin.txid)
    except ValueError as exc:
        raise SpendBuildError(f"bad txid {coin.txid!r}") from exc
    if len(txid) != 32 or not (0 <= coin.out_idx < 2**32) or coin.value_sats <= 0:
        raise SpendBuildError(f"bad coin {coin.outpoint}")
    txin = PartialTxInput(prevout=TxOutpoint(txid=txid, out_idx=coin.out_idx),
                          nsequence=out.recovery.blocks)
    txin.witness_utxo = TxOutput(scriptpubkey=out.scriptpubkey, value=coin.value_sats)
    txin.witness_sizehint = out.recovery.witness_size()
    psbt_fields.set_input_musig_info(txin, out)
    return txin


def build_recovery_spend(coins: Sequence[MusigCoin], destination: str, *,
                         fee_sats: Optional[int] = None,
                         feerate_sat_vb: Optional[float] = None) -> PartialTransaction:
    """Sweep ``coins`` (of recovery outputs) to ``destination`` by the script path.

    No maturity check here (``check_mature`` is the caller's): tests build the
    very same transaction early to show the node refuses it too.
    """
    if not coins:
        raise SpendBuildError("no coins to recover")
    if len(coins) > MAX_SPEND_INPUTS:
        raise SpendBuildError("too many inputs")
    if len({c.outpoint for c in coins}) != len(coins):
        raise SpendBuildError("the same coin is listed twice")
    if (fee_sats is None) == (feerate_sat_vb is None):
        raise SpendBuildError("give exactly one of fee_sats and feerate_sat_vb")
    if fee_sats is not None and (not isinstance(fee_sats, int) or fee_sats < 0):
        raise SpendBuildError(f"bad fee {fee_sats!r}")
    if feerate_sat_vb is not None and not (0 < feerate_sat_vb <= 10_000):
        raise SpendBuildError(f"bad feerate {feerate_sat_vb!r}")
    txins = [recovery_txin(c) for c in coins]
    total = sum(c.value_sats for c in coins)
    if fee_sats is None:
        probe = PartialTransaction.from_io(list(txins), [payment_output(destination, total)],
                                           locktime=0, version=2)
        fee_sats = math.ceil(feerate_sat_vb * probe.estimated_size())
    if total - fee_sats <= 0:
        raise SpendBuildError(f"the coins ({total} sat) do not cover the fee ({fee_sats} sat)")
    return PartialTransaction.from_io(txins, [payment_output(destination, total - fee_sats)],
                                      locktime=0, version=2)


def recovery_inputs(tx: PartialTransaction) -> dict[int, MusigOutput]:
    """Inputs spending a recovery output by its leaf (nSequence = the leaf's N), checked."""
    found = {}
    for i, out in musig_inputs(tx).items():
        if out.recovery is None:
            continue
        if tx.inputs()[i].nsequence != out.recovery.blocks:
            raise ParticipantMismatch(i, f"nSequence {tx.inputs()[i].nsequence} is not the "
                                         f"leaf's relative timelock {out.recovery.blocks}")
        found[i] = out
    return found


def script_path_sighash(tx: PartialTransaction, input_index: int, leaf_hash: bytes,
                        cache: Optional[SighashCache] = None) -> bytes:
    """BIP-342 SIGHASH_DEFAULT message of input ``input_index`` for the leaf ``leaf_hash``."""
    if cache is None or cache._witver1 is None:
        check_input_info(tx)
    txin = tx.inputs()[input_index]
    if txin.sighash not in (None, Sighash.DEFAULT):
        raise NotAMusigInput(input_index, "only SIGHASH_DEFAULT is signed for recovery inputs")
    if tx.version < 2:
        raise SpendBuildError("a relative timelock needs transaction version 2")
    try:
        pre = tx.serialize_preimage(input_index, sighash_cache=cache)
    except Exception as exc:
        raise MissingInputInfo(input_index, f"cannot compute the sighash: {exc}") from exc
    if pre[-5] != 0 or pre[-4:] != input_index.to_bytes(4, "little"):
        raise BridgeError("unexpected key-path sighash layout from Electrum")
    ext = bytes(leaf_hash) + KEY_VERSION + NO_CODESEPARATOR
    return bip340_tagged_hash(b"TapSighash",
                              pre[:-5] + bytes([SCRIPT_PATH_SPEND_TYPE]) + pre[-4:] + ext)


def sign_recovery(tx: PartialTransaction, secret: bytes) -> list[int]:
    """Add our tapscript signature to every recovery input whose leaf takes our key."""
    pub = crypto.plain_pubkey(secret)
    cache = SighashCache()
    signed = []
    for i, out in sorted(recovery_inputs(tx).items()):
        policy = out.recovery
        if pub not in policy.signers:
            continue
        msg = script_path_sighash(tx, i, policy.leaf_hash, cache)
        sig = crypto.schnorr_sign(secret, msg)
        psbt_taptree.add_script_sig(tx.inputs()[i], pub[1:], policy.leaf_hash, sig, i)
        signed.append(i)
    if not signed:
        raise ParticipantMismatch(0, "no recovery input of this transaction takes our key")
    tx.invalidate_ser_cache()
    return signed


@dataclass(frozen=True)
class RecoveryStatus:
    input_index: int
    policy_text: str
    required: int
    signed_by: tuple[bytes, ...]


def recovery_status(tx: PartialTransaction) -> list[RecoveryStatus]:
    """Per recovery input: which of its signers have a valid signature in the PSBT."""
    cache = SighashCache()
    result = []
    for i, out in sorted(recovery_inputs(tx).items()):
        policy = out.recovery
        msg = script_path_sighash(tx, i, policy.leaf_hash, cache)
        sigs = psbt_taptree.script_sigs(tx.inputs()[i], policy.leaf_hash, i)
        ok = []
        for k in policy.signers:
            sig = sigs.get(k[1:])
            if sig is None:
                continue
            if not crypto.schnorr_verify(k[1:], msg, sig):
                raise InvalidFinalSignature(i, f"the tapscript signature of {k.hex()} does not "
                                               f"verify")
            ok.append(k)
        result.append(RecoveryStatus(i, policy.describe(), policy.required, tuple(ok)))
    return result


def finalize_recovery(tx: PartialTransaction) -> PartialTransaction:
    """Write the script-path witnesses (signatures, leaf script, control block) and finalize."""
    statuses = recovery_status(tx)
    if not statuses:
        raise NotAMusigInput(0, "the transaction has no recovery input")
    outs = recovery_inputs(tx)
    for st in statuses:
        if len(st.signed_by) < st.required:
            raise InvalidFinalSignature(st.input_index, f"{len(st.signed_by)} of the {st.required} "
                                                  f"required signature(s)")
        out = outs[st.input_index]
        policy = out.recovery
        sigs = psbt_taptree.script_sigs(tx.inputs()[st.input_index], policy.leaf_hash,
                                        st.input_index)
        use = set(st.signed_by[:st.required])   # multi_a counts: exactly k, the rest empty
        # The script checks the first key against the top of the stack: witness items are
        # listed bottom to top, so the signatures go in reverse key order.
        items = [sigs[k[1:]] if k in use else b"" for k in reversed(policy.signers)]
        txin = tx.inputs()[st.input_index]
        txin.script_sig = b""
        txin.witness = construct_witness(items + [policy.script, out.control_block()])
    tx.finalize_psbt()
    tx.invalidate_ser_cache()
    if not tx.is_complete():
        raise BridgeError("the transaction is not complete: some inputs are unsigned")
    return tx


def review_recovery(tx: PartialTransaction, my_pubkey: bytes) -> dict:
    """What a k-of-n co-signer approves: computed from the PSBT only (like review_spend)."""
    check_input_info(tx)
    outs = recovery_inputs(tx)
    if not outs:
        raise NotAMusigInput(0, "the transaction has no recovery input")
    total_in = sum(txin.value_sats() for txin in tx.inputs())
    total_out = sum(o.value for o in tx.outputs())
    if total_out > total_in:
        raise SpendBuildError("outputs exceed inputs")
    return {"txid": tx.txid(), "fee_sats": total_in - total_out, "total_in_sats": total_in,
            "inputs": [{"index": i, "prevout": tx.inputs()[i].prevout.to_str(),
                        "value_sats": tx.inputs()[i].value_sats(),
                        "descriptor": out.descriptor, "recovery": out.recovery.describe(),
                        "ours": bytes(my_pubkey) in out.recovery.signers}
                       for i, out in sorted(outs.items())],
            "outputs": [{"address": o.address, "value_sats": o.value,
                         "script": o.scriptpubkey.hex()} for o in tx.outputs()]}
