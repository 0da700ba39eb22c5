"""One participant's MuSig2 signing carried entirely in a PSBT (BIP-373 round trip).

This is the offline path (export PSBT -> each participant adds a nonce -> each
adds a partial signature -> anyone aggregates), and the reference the network
session layer is checked against. The same rules hold:

* before making a nonce, the participant reviews the request against the PSBT
  (``review_spend``): the message it will sign is re-derived from the transaction;
* the secret nonce lives only in this object's memory, is bound to one
  (unsigned txid, input) pair and is consumed by signing; a second round 2 for
  the same input has no nonce left and is refused;
* round 2 re-derives the sighash again and refuses if the transaction changed,
  or if the PSBT no longer carries our own public nonce unchanged.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

from electrum.transaction import PartialTransaction, SighashCache

from .. import crypto
from . import psbt_fields
from .errors import BridgeError, InvalidFinalSignature, ParticipantMismatch, SighashMismatch
from .spend import SpendReview, attach_signature, keypath_sighash, musig_inputs, review_spend


class _Pending:
    __slots__ = ("secnonce", "msg", "output_key")

    def __init__(self, secnonce, msg: bytes, output_key: bytes):
        self.secnonce = secnonce
        self.msg = msg
        self.output_key = output_key


class PsbtSigner:
    def __init__(self, pubkey: bytes, get_secret: Callable[[], bytes]):
        """``get_secret`` is asked for the participant secret only when signing (password prompt)."""
        self.pubkey = bytes(pubkey)
        self._get_secret = get_secret
        self._pending: dict[tuple[str, int], _Pending] = {}

    def round1(self, tx: PartialTransaction,
               claimed: Optional[Mapping[int, bytes]] = None) -> SpendReview:
        """Review, then add our public nonce to every input we were asked to sign.

        Without ``claimed`` we sign every MuSig2 input that includes our key, with
        the sighash we compute ourselves (the PSBT-file flow has no separate request).
        """
        if claimed is None:
            cache = SighashCache()
            claimed = {i: keypath_sighash(tx, i, cache) for i, out in musig_inputs(tx).items()
                       if out.signer_index_of(self.pubkey) is not None}
        review = review_spend(tx, self.pubkey, claimed)
        txid = tx.txid()
        musig = musig_inputs(tx)
        for i, msg in review.messages.items():
            if (txid, i) in self._pending:
                raise BridgeError(f"input {i}: round 1 was already done for this transaction")
        for i, msg in review.messages.items():
            out = musig[i]
            secnonce, pubnonce = crypto.nonce_gen(pubkey=self.pubkey, keyagg=out.keyagg(), msg=msg)
            psbt_fields.add_pubnonce(tx.inputs()[i], self.pubkey, out.output_key, pubnonce, i)
            self._pending[(txid, i)] = _Pending(secnonce, msg, out.output_key)
        tx.invalidate_ser_cache()
        return review

    def round2(self, tx: PartialTransaction,
               get_secret: Optional[Callable[[], bytes]] = None) -> list[int]:
        """Add our partial signature to each input we hold a nonce for; returns their indexes.

        ``get_secret`` overrides the constructor's (a daemon passes this command's password).
        """
        txid = tx.txid()
        mine = sorted(i for (t, i) in self._pending if t == txid)
        if not mine:
            raise BridgeError("no round-1 nonce of ours for this transaction (already signed, "
                              "or the transaction changed)")
        musig = musig_inputs(tx)
        cache = SighashCache()
        secret: Optional[bytes] = None
        signed = []
        for i in mine:
            pending = self._pending.pop((txid, i))   # popped first: never reusable, even on error
            out = musig.get(i)
            if out is None or out.output_key != pending.output_key:
                raise ParticipantMismatch(i, "the input's MuSig2 keys changed since round 1")
            msg = keypath_sighash(tx, i, cache)
            if msg != pending.msg:
                raise SighashMismatch(i, "the transaction changed since round 1")
            nonces = psbt_fields.pubnonces(tx.inputs()[i], out.output_key, i)
            if nonces.get(self.pubkey) != pending.secnonce.pubnonce:
                raise SighashMismatch(i, "our public nonce in the PSBT was replaced")
            missing = [k.hex() for k in out.participants if k not in nonces]
            if missing:
                raise BridgeError(f"input {i}: public nonces missing from {missing}")
            if secret is None:
                secret = (get_secret or self._get_secret)()
            session = crypto.SigningSession.from_pubnonces(
                out.keyagg(), [nonces[k] for k in out.participants], msg)
            psig = session.partial_sign(pending.secnonce, secret)
            psbt_fields.add_partial_sig(tx.inputs()[i], self.pubkey, out.output_key, psig, i)
            signed.append(i)
        tx.invalidate_ser_cache()
        return signed

    def forget(self) -> None:
        """Drop every pending secret nonce (session aborted)."""
        for p in self._pending.values():
            p.secnonce.discard()
        self._pending.clear()


def aggregate_input(tx: PartialTransaction, input_index: int, *, musig: Optional[dict] = None,
                    cache: Optional[SighashCache] = None) -> bytes:
    """Combine all partial signatures of a MuSig2 input (blaming a bad one) into tap_key_sig."""
    musig = musig_inputs(tx) if musig is None else musig
    cache = SighashCache() if cache is None else cache
    if input_index not in musig:
        raise InvalidFinalSignature(input_index, "not a MuSig2 input")
    out = musig[input_index]
    txin = tx.inputs()[input_index]
    nonces = psbt_fields.pubnonces(txin, out.output_key, input_index)
    psigs = psbt_fields.partial_sigs(txin, out.output_key, input_index)
    missing = [k.hex() for k in out.participants if k not in nonces or k not in psigs]
    if missing:
        raise BridgeError(f"input {input_index}: nonces or partial signatures missing from "
                          f"{missing}")
    msg = keypath_sighash(tx, input_index, cache)
    session = crypto.SigningSession.from_pubnonces(
        out.keyagg(), [nonces[k] for k in out.participants], msg)
    try:
        sig = session.aggregate([psigs[k] for k in out.participants])
    except crypto.InvalidPartialSig as exc:
        who = out.participants[exc.index].hex() if exc.index is not None else "unknown"
        raise InvalidFinalSignature(input_index, f"bad partial signature from {who}") from exc
    attach_signature(tx, input_index, sig, musig=musig, cache=cache)
    return sig


def aggregate_all(tx: PartialTransaction) -> dict[int, bytes]:
    musig, cache = musig_inputs(tx), SighashCache()
    return {i: aggregate_input(tx, i, musig=musig, cache=cache) for i in musig}
