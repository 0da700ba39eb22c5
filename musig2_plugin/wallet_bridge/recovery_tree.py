"""Timelocked recovery leaves of a MuSig2 output: policy, tapscript, merkle root, control block.

Why a recovery leaf: an n-of-n output is hostage to every co-signer. A taproot
script tree adds a way out that costs nothing on the cooperative path (the key
path stays one 64-byte MuSig2 signature, the leaf stays hidden until used):

    funder alone after N blocks:  and_v(v:pk(F),older(N))
        <x(F)> OP_CHECKSIGVERIFY <N> OP_CHECKSEQUENCEVERIFY
    k of the n after N blocks:    and_v(v:multi_a(k,K1,...,Kn),older(N))
        <x(K1)> OP_CHECKSIG <x(K2)> OP_CHECKSIGADD ... <x(Kn)> OP_CHECKSIGADD
        <k> OP_NUMEQUALVERIFY <N> OP_CHECKSEQUENCEVERIFY

That is the miniscript compilation (BIP-379, tapscript context of BIP-386):
``v:`` turns the final OP_CHECKSIG / OP_NUMEQUAL into its VERIFY form and
``older(N)`` is ``<N> OP_CSV``; N is a BIP-68 relative lock in blocks
(1..65,535, the type flag clear). One leaf per output: its leaf hash is the
merkle root the aggregate key is tweaked with (BIP-341).

This module is pure (no Electrum): it is also the code the co-signer uses to
decompile a leaf script it receives in a PSBT, so parsing is strict and a
script is accepted only if compiling the parsed policy gives the same bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from .. import crypto
from ..foundation.constants import (RECOVERY_DEFAULT_BLOCKS, RECOVERY_MAX_BLOCKS, RECOVERY_MIN_BLOCKS,
                         TAPSCRIPT_LEAF_VERSION)
from .errors import RecoveryPolicyError

FUNDER, THRESHOLD = "funder", "threshold"

OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CHECKSIGADD = 0xAC, 0xAD, 0xBA
OP_NUMEQUALVERIFY, OP_CHECKSEQUENCEVERIFY = 0x9D, 0xB2


def _check_blocks(blocks: object) -> int:
    if (not isinstance(blocks, int) or isinstance(blocks, bool)
            or not RECOVERY_MIN_BLOCKS <= blocks <= RECOVERY_MAX_BLOCKS):
        raise RecoveryPolicyError(f"the timelock must be {RECOVERY_MIN_BLOCKS} to "
                                  f"{RECOVERY_MAX_BLOCKS} blocks (BIP-68), got {blocks!r}")
    return blocks


def _push_number(n: int) -> bytes:
    """Minimal script push of a positive number (what miniscript and Core emit)."""
    if 1 <= n <= 16:
        return bytes([0x50 + n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "little")
    if body[-1] & 0x80:
        body += b"\x00"
    return bytes([len(body)]) + body


def _push_xonly(key33: bytes) -> bytes:
    return b"\x20" + bytes(key33[1:])


@dataclass(frozen=True)
class RecoveryPolicy:
    """One recovery leaf: who may spend alone (funder) or how many of the keys, after N blocks.

    ``keys`` are the output's participants in KeySort order (the order written
    in the descriptor and in multi_a); ``funder`` is one of them.
    """
    kind: str
    blocks: int
    keys: tuple[bytes, ...]
    funder: Optional[bytes] = None
    threshold: Optional[int] = None

    # --- construction ------------------------------------------------------------
    @classmethod
    def funder_alone(cls, funder: bytes, participants: Sequence[bytes],
                     blocks: int = RECOVERY_DEFAULT_BLOCKS) -> "RecoveryPolicy":
        keys = tuple(bytes(k) for k in participants)
        if bytes(funder) not in keys:
            raise RecoveryPolicyError("the funder of a recovery leaf must be a participant")
        return cls(FUNDER, _check_blocks(blocks), keys, funder=bytes(funder))

    @classmethod
    def k_of_n(cls, k: int, participants: Sequence[bytes],
               blocks: int = RECOVERY_DEFAULT_BLOCKS) -> "RecoveryPolicy":
        keys = tuple(bytes(key) for key in participants)
        # k = n would add nothing the key path cannot do; k < 1 would let anyone spend.
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < len(keys):
            raise RecoveryPolicyError(f"a k-of-n recovery leaf needs 1 <= k < n={len(keys)}, "
                                      f"got k={k!r}")
        return cls(THRESHOLD, _check_blocks(blocks), keys, threshold=k)

    @classmethod
    def from_spec(cls, spec: str, participants: Sequence[bytes],
                  me: Optional[bytes] = None) -> "RecoveryPolicy":
        """A user's short policy text: ``funder:N`` (me alone), ``funder:<key hex>:N``, ``k-of-n:N``.

        N may be omitted (``funder``, ``2-of-3``) for the default timelock.
        """
        if not isinstance(spec, str) or len(spec) > 200:
            raise RecoveryPolicyError("a recovery policy is a short text like 'funder:144'")
        parts = spec.strip().lower().split(":")
        head, rest = parts[0], parts[1:]
        blocks = RECOVERY_DEFAULT_BLOCKS
        try:
            if head == "funder":
                funder = me
                if rest and len(rest[0]) == 66:
                    funder = bytes.fromhex(rest.pop(0))
                if len(rest) > 1:
                    raise ValueError
                if rest:
                    blocks = int(rest[0])
                if funder is None:
                    raise RecoveryPolicyError("say which participant is the funder")
                return cls.funder_alone(funder, participants, blocks)
            m = re.fullmatch(r"(\d{1,2})-of-(\d{1,2})", head)
            if m and len(rest) <= 1:
                k, n = int(m.group(1)), int(m.group(2))
                if n != len(participants):
                    raise RecoveryPolicyError(f"the policy says {n} keys, the output has "
                                              f"{len(participants)}")
                if rest:
                    blocks = int(rest[0])
                return cls.k_of_n(k, participants, blocks)
        except ValueError:
            pass
        raise RecoveryPolicyError(f"unknown recovery policy {spec!r}: use funder[:N], "
                                  f"funder:<key>[:N] or k-of-n[:N]")

    # --- the leaf ---------------------------------------------------------------------
    @property
    def spec(self) -> str:
        if self.kind == FUNDER:
            return f"funder:{self.funder.hex()}:{self.blocks}"
        return f"{self.threshold}-of-{len(self.keys)}:{self.blocks}"

    def miniscript(self) -> str:
        """The leaf as BIP-379 miniscript text, keys as written in the descriptor (33-byte hex)."""
        if self.kind == FUNDER:
            return f"and_v(v:pk({self.funder.hex()}),older({self.blocks}))"
        keys = ",".join(k.hex() for k in self.keys)
        return f"and_v(v:multi_a({self.threshold},{keys}),older({self.blocks}))"

    def describe(self) -> str:
        """One line for dialogs and reviews."""
        if self.kind == FUNDER:
            return (f"after {self.blocks} blocks the funder {self.funder.hex()[:16]}… "
                    f"can spend alone")
        return f"after {self.blocks} blocks any {self.threshold} of the {len(self.keys)} can spend"

    @property
    def script(self) -> bytes:
        if self.kind == FUNDER:
            body = _push_xonly(self.funder) + bytes([OP_CHECKSIGVERIFY])
        else:
            body = _push_xonly(self.keys[0]) + bytes([OP_CHECKSIG])
            for k in self.keys[1:]:
                body += _push_xonly(k) + bytes([OP_CHECKSIGADD])
            body += _push_number(self.threshold) + bytes([OP_NUMEQUALVERIFY])
        return body + _push_number(self.blocks) + bytes([OP_CHECKSEQUENCEVERIFY])

    @property
    def leaf_hash(self) -> bytes:
        script = self.script
        return crypto.tagged_hash("TapLeaf", bytes([TAPSCRIPT_LEAF_VERSION])
                                  + _compact_size(len(script)) + script)

    @property
    def merkle_root(self) -> bytes:
        """A one-leaf tree: the root is the leaf hash (BIP-341)."""
        return self.leaf_hash

    @property
    def signers(self) -> tuple[bytes, ...]:
        """The keys whose signatures the leaf takes, in script order."""
        return (self.funder,) if self.kind == FUNDER else self.keys

    @property
    def required(self) -> int:
        return 1 if self.kind == FUNDER else self.threshold

    def control_block(self, internal_key33: bytes, output_key33: bytes) -> bytes:
        """leaf version | parity of Q, then x(P); no path for a one-leaf tree."""
        return bytes([TAPSCRIPT_LEAF_VERSION | (output_key33[0] & 1)]) + bytes(internal_key33[1:])

    def witness_size(self) -> int:
        """Serialized witness size (for fee estimation): item count, signatures, script, control."""
        n_sigs = len(self.signers)
        sigs = self.required * 65 + (n_sigs - self.required) * 1
        script = len(self.script)
        return 1 + sigs + len(_compact_size(script)) + script + 1 + 33

    # --- parsing --------------------------------------------------------------------
    @classmethod
    def from_miniscript(cls, text: str, participants: Sequence[bytes]) -> "RecoveryPolicy":
        """Parse the descriptor's TREE part; its keys must be the output's participants."""
        keys = tuple(bytes(k) for k in participants)
        m = re.fullmatch(r"and_v\(v:pk\(([0-9a-f]{66})\),older\((\d{1,5})\)\)", text)
        if m:
            return cls.funder_alone(bytes.fromhex(m.group(1)), keys, int(m.group(2)))
        m = re.fullmatch(r"and_v\(v:multi_a\((\d{1,2}),([0-9a-f,]+)\),older\((\d{1,5})\)\)", text)
        if m:
            leaf_keys = [p for p in m.group(2).split(",")]
            if any(len(p) != 66 for p in leaf_keys):
                raise RecoveryPolicyError("multi_a keys must be 33-byte hex keys")
            if tuple(bytes.fromhex(p) for p in leaf_keys) != keys:
                raise RecoveryPolicyError("the multi_a keys must be the output's participants "
                                          "in the same order")
            return cls.k_of_n(int(m.group(1)), keys, int(m.group(3)))
        raise RecoveryPolicyError("only the recovery leaves and_v(v:pk(F),older(N)) and "
                                  "and_v(v:multi_a(k,K1,...,Kn),older(N)) are supported")

    @classmethod
    def from_script(cls, script: bytes, participants: Sequence[bytes]) -> "RecoveryPolicy":
        """Decompile a leaf script (from a PSBT) into one of our policies, or refuse.

        Accepted only if recompiling gives exactly these bytes (minimal pushes, our shapes).
        """
        keys = tuple(bytes(k) for k in participants)
        by_x = {k[1:]: k for k in keys}
        if len(by_x) != len(keys) or not isinstance(script, (bytes, bytearray)):
            raise RecoveryPolicyError("participants with the same x-only key")
        script = bytes(script)
        if len(script) > 40 * len(keys) + 16 or len(script) < 36:
            raise RecoveryPolicyError("recovery leaf script has a bad length")
        if script[-1] != OP_CHECKSEQUENCEVERIFY:
            raise RecoveryPolicyError("the leaf script does not end with a relative timelock")
        # Numbers are read by trying every push that could end at a position; the
        # recompile-and-compare below keeps only the exact (minimal) encoding.
        for blocks, nlen in _numbers_ending_at(script, len(script) - 1):
            try:
                if script[0] == 0x20 and script[33] == OP_CHECKSIGVERIFY:
                    funder = by_x.get(script[1:33])
                    candidates = [cls.funder_alone(funder, keys, blocks)] if funder else []
                else:
                    verify_at = len(script) - 1 - nlen - 1
                    candidates = [cls.k_of_n(k, keys, blocks)
                                  for k, _ in _numbers_ending_at(script, verify_at)
                                  if 1 <= k < len(keys)]
            except RecoveryPolicyError:
                continue
            for policy in candidates:
                if policy.script == script:
                    return policy
        raise RecoveryPolicyError("the leaf script is not one of our recovery policies "
                                  "over this output's keys")


def _compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little")


def _numbers_ending_at(script: bytes, end: int) -> list[tuple[int, int]]:
    """Every (number, push length) whose push ends just before ``script[end]``."""
    found = []
    if end >= 1 and 0x51 <= script[end - 1] <= 0x60:
        found.append((script[end - 1] - 0x50, 1))
    for size in range(1, 4):
        start = end - 1 - size
        if start >= 0 and script[start] == size:
            found.append((int.from_bytes(script[start + 1:end], "little"), size + 1))
    return found
