"""Creating or importing a MuSig2 output with the recovery policy its creator announced.

Why a co-signer checks the tree: the descriptor's script tree decides who can
take the coins without it after N blocks. A creator who announced "the funder
alone after 4,032 blocks" but sends a descriptor whose leaf is "the funder alone
after 1 block" (or a leaf of a key that is not the funder's) would take the
money as soon as it is paid in. So the importer states the policy it agreed to
(from the request, the picker or out of band) and we refuse a descriptor whose
tree is anything else; a tree where none was announced is refused too.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .errors import InvalidParticipants, RecoveryPolicyMismatch
from .musig_output import MusigOutput
from .recovery_tree import RecoveryPolicy


def create_output(me: bytes, others: Sequence[bytes], recovery: Optional[str] = None,
                  *, funder: Optional[bytes] = None) -> MusigOutput:
    """The creator's output: our key plus ``others``, with the recovery policy text, if any.

    In ``funder[:N]`` the funder is us (the creator pays the output in).
    """
    keys = [bytes(k) for k in others]
    if me not in keys:
        keys.append(me)
    plain = MusigOutput.from_pubkeys(keys)
    if not recovery:
        return plain
    policy = RecoveryPolicy.from_spec(recovery, plain.participants, me=funder or me)
    return MusigOutput.from_pubkeys(keys, recovery=policy)


def import_output(descriptor: str, me: bytes, announced: Optional[str],
                  *, announced_funder: Optional[bytes] = None) -> MusigOutput:
    """A co-signer's import: our key must be in it and its tree must be the announced policy.

    ``announced`` is the policy text we agreed to (``funder:<key>:N``, ``k-of-n:N``) or
    None for a key-path-only output. ``funder:N`` needs ``announced_funder``.
    """
    out = MusigOutput.from_descriptor(descriptor)
    if out.signer_index_of(me) is None:
        raise InvalidParticipants("your participant key is not in this descriptor")
    expected = None
    if announced:
        expected = RecoveryPolicy.from_spec(announced, out.participants, me=announced_funder)
    if out.recovery != expected:
        got = out.recovery.describe() if out.recovery else "no recovery leaf"
        want = expected.describe() if expected else "no recovery leaf"
        raise RecoveryPolicyMismatch(f"the descriptor's script tree ({got}) is not the "
                                     f"announced policy ({want})")
    return out
