"""BIP-174 Combiner for MuSig2 PSBTs: merge the participants' nonces and partial signatures.

Electrum's ``combine_with_other_psbt`` merges the input sections' unknown key-value pairs (where
the BIP-373 fields live) by letting the last PSBT win. For MuSig2 that would let one participant's
file silently replace another's nonce or partial signature for the same key, so this module
refuses two PSBTs that disagree on a field before merging. Reading Electrum's private
``_unknown`` map happens here, in the wallet bridge (as in ``psbt_fields``), never in the edge.
"""
from __future__ import annotations

from typing import Sequence

from electrum.transaction import PartialTransaction

from .errors import MalformedPsbt
from .spend import parse_psbt

#: More files than this in one combine is not a co-signing set (at most 100 participants).
MAX_COMBINED_PSBTS = 100


def _disagree(a: PartialTransaction, b: PartialTransaction) -> bool:
    """True when an input of ``b`` carries a field ``a`` has with another value."""
    for txin_a, txin_b in zip(a.inputs(), b.inputs()):
        mine = txin_a._unknown
        for key, value in txin_b._unknown.items():
            if key in mine and mine[key] != value:
                return True
    return False


def combine_psbts(psbts: Sequence["str | bytes"]) -> PartialTransaction:
    """One PSBT holding every field of ``psbts`` (all of the same unsigned transaction).

    MalformedPsbt when one does not parse, is of another transaction, or disagrees with an
    earlier one on a MuSig2 field. Each is parsed afresh (base64, hex or bytes, bounded).
    """
    items = list(psbts)
    if not 1 <= len(items) <= MAX_COMBINED_PSBTS:
        raise MalformedPsbt(f"give 1 to {MAX_COMBINED_PSBTS} PSBTs, not {len(items)}")
    parsed = [parse_psbt(p) for p in items]
    first = parsed[0]
    for other in parsed[1:]:
        if other.txid() != first.txid():
            raise MalformedPsbt("the PSBTs are not for the same transaction")
        if _disagree(first, other):
            raise MalformedPsbt("the PSBTs disagree on a MuSig2 field")
        first.combine_with_other_psbt(other)
    return first
