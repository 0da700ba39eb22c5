"""What a wallet signs, computed once from the transaction: its sighashes and the spend review.

The creator of a request needs the sighashes of its own MuSig2 inputs (the request's messages)
and the review of the spend (outputs, amounts, fee); the command answers them and the
co-signing service announces them. Both now take them from one :class:`OwnSpend`, so the
sighashes and the review are computed once per request, not once per caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from electrum.transaction import PartialTransaction

from ..wallet_bridge import (ParticipantMismatch, SpendReview, keypath_sighash, musig_inputs,
                             review_spend, sighashes)


@dataclass(frozen=True)
class OwnSpend:
    """A spend of MuSig2 coins seen by one participant (``me``)."""
    sighashes: dict[int, bytes]         # every MuSig2 input's BIP-341 key-path sighash
    inputs: tuple[int, ...]             # the inputs ``me`` co-signs, ascending
    key_sets: frozenset                 # (participant keys, taproot merkle root) of those inputs
    review: SpendReview                 # outputs, amounts and fee, from the transaction itself


def prepare_own_spend(tx: PartialTransaction, me: bytes) -> OwnSpend:
    """Sighashes of every MuSig2 input and the review of the ones ``me`` signs.

    ParticipantMismatch when no input is ``me``'s to co-sign; the wallet bridge's typed errors
    when an input lacks what the review needs.
    """
    musig = musig_inputs(tx)
    mine = tuple(sorted(i for i, out in musig.items() if out.signer_index_of(me) is not None))
    if not mine:
        raise ParticipantMismatch(0, "no input of this transaction is ours to co-sign")
    msgs = sighashes(tx)
    review = review_spend(tx, me, {i: msgs[i] for i in mine})
    return OwnSpend(msgs, mine, frozenset((musig[i].participants, musig[i].merkle_root)
                                          for i in mine), review)


def review_psbt(tx: PartialTransaction, me: bytes,
                claimed: Optional[Mapping[int, bytes]] = None) -> SpendReview:
    """The review of a PSBT received by file: against the sighashes its sender claims, or, with
    none claimed, the ones we compute for our own inputs (SighashMismatch on a difference)."""
    if claimed is None:
        claimed = {i: keypath_sighash(tx, i) for i, out in musig_inputs(tx).items()
                   if out.signer_index_of(me) is not None}
    return review_spend(tx, me, dict(claimed))
