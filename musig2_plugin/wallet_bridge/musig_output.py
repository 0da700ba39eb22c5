"""A MuSig2 output ("vault"): n participant keys -> one taproot output.

    internal key P = KeyAgg(KeySort(K1..Kn))              (BIP-327)
    output key   Q = P + hash_TapTweak(x(P) [|| root])·G   (BIP-341; root = the recovery
                                                           leaf's hash when there is one)
    scriptPubKey   = OP_1 <x(Q)>,  address = bech32m(x(Q))
    descriptor     = tr(musig(K_sorted...)[,LEAF])#checksum (BIP-390, BIP-386 miniscript leaf)

Q is computed twice, independently: by our crypto layer (the tweak applied to
the key-aggregation cache, which is what the signers will sign under) and by
Electrum's own ``taproot_output_script``. They must agree, or we refuse to
produce an address: a disagreement would mean coins the signers cannot spend.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from electrum import constants as electrum_constants
from electrum import segwit_addr
from electrum.bitcoin import taproot_output_script

from .. import crypto
from ..foundation.constants import MAX_OUTPUT_PARTICIPANTS, MIN_OUTPUT_PARTICIPANTS
from .descriptor import musig_descriptor, parse_musig_tree_descriptor
from .errors import DescriptorError, InvalidParticipants, OutputKeyMismatch
from .recovery_tree import TAPSCRIPT_LEAF_VERSION, RecoveryPolicy


def _check_keys(pubkeys: Iterable[bytes]) -> list[bytes]:
    keys = [bytes(k) if isinstance(k, (bytes, bytearray)) else k for k in pubkeys]
    if not (MIN_OUTPUT_PARTICIPANTS <= len(keys) <= MAX_OUTPUT_PARTICIPANTS):
        raise InvalidParticipants(f"a MuSig2 output needs {MIN_OUTPUT_PARTICIPANTS} to "
                                  f"{MAX_OUTPUT_PARTICIPANTS} participant keys, got {len(keys)}")
    for i, k in enumerate(keys):
        if not isinstance(k, bytes) or len(k) != 33 or k[0] not in (2, 3):
            raise InvalidParticipants(f"participant key {i} is not a 33-byte compressed key")
    if len(set(keys)) != len(keys):
        # BIP-390 allows repeats, but here a repeat means one person holding two
        # "independent" shares: refuse rather than mislead the other participants.
        raise InvalidParticipants("the same participant key appears twice")
    return keys


@dataclass(frozen=True)
class MusigOutput:
    participants: tuple[bytes, ...]   # KeySort order, 33-byte compressed
    internal_key: bytes               # 33-byte aggregate key P (untweaked), BIP-373's "aggregate pubkey"
    output_key: bytes                 # 33-byte Q with its true parity (BIP-373 nonce/psig key)
    recovery: Optional[RecoveryPolicy] = None   # the one recovery leaf, if any

    # --- construction -------------------------------------------------------
    @classmethod
    def from_pubkeys(cls, pubkeys: Iterable[bytes], *,
                     recovery: Optional[RecoveryPolicy] = None) -> "MusigOutput":
        keys = _check_keys(pubkeys)
        try:
            ordered = crypto.key_sort(keys)
            agg = crypto.KeyAggContext.from_pubkeys(ordered)
            internal = agg.aggregate_pubkey()
        except crypto.InvalidPublicKey as exc:
            raise InvalidParticipants(f"participant key {exc.index} is not on the curve") from exc
        except crypto.CryptoError as exc:
            raise InvalidParticipants(f"key aggregation failed: {exc}") from exc
        tree = None
        if recovery is not None:
            if recovery.keys != tuple(ordered):
                raise InvalidParticipants("the recovery leaf is over other keys than the output")
            tree = (TAPSCRIPT_LEAF_VERSION, recovery.script)
        try:
            output = agg.with_taproot_tweak(
                recovery.merkle_root if recovery else None).aggregate_pubkey()
        except crypto.CryptoError as exc:
            raise InvalidParticipants(f"taproot tweak failed: {exc}") from exc
        if taproot_output_script(internal[1:], script_tree=tree) != b"\x51\x20" + output[1:]:
            raise OutputKeyMismatch("our taproot tweak and Electrum's disagree")
        return cls(participants=tuple(ordered), internal_key=internal, output_key=output,
                   recovery=recovery)

    @classmethod
    def from_descriptor(cls, text: str) -> "MusigOutput":
        keys, tree = parse_musig_tree_descriptor(text)
        recovery = None
        if tree is not None:
            ordered = crypto.key_sort(_check_keys(keys))
            if [bytes(k) for k in ordered] != keys:
                # We print keys in KeySort order; another order is another text for the
                # same address, which would make backups and imports ambiguous.
                raise DescriptorError("musig() keys must be written in KeySort order")
            recovery = RecoveryPolicy.from_miniscript(tree, ordered)
        return cls.from_pubkeys(keys, recovery=recovery)

    # --- views -------------------------------------------------------------
    @property
    def xonly_output_key(self) -> bytes:
        return self.output_key[1:]

    @property
    def scriptpubkey(self) -> bytes:
        return b"\x51\x20" + self.output_key[1:]

    def address(self, *, net: Any = None) -> str:
        net = net or electrum_constants.net
        addr = segwit_addr.encode_segwit_address(net.SEGWIT_HRP, 1, self.output_key[1:])
        if addr is None:
            raise OutputKeyMismatch("could not encode the output key as an address")
        return addr

    @functools.cached_property
    def descriptor(self) -> str:
        # Cached: the BIP-380 checksum is pure Python, and reviews of many-input spends and
        # the outputs store ask for it per input and per lookup.
        return musig_descriptor(self.participants,
                                self.recovery.miniscript() if self.recovery else None)

    @property
    def merkle_root(self) -> Optional[bytes]:
        """The script tree's merkle root the internal key is tweaked with, None for key-path only."""
        return self.recovery.merkle_root if self.recovery else None

    def keyagg(self) -> "crypto.KeyAggContext":
        """The tweaked key-aggregation context the signers sign under (Q)."""
        return crypto.KeyAggContext.from_pubkeys(list(self.participants)).with_taproot_tweak(
            self.merkle_root)

    def control_block(self) -> bytes:
        """BIP-341 control block of the recovery leaf (script-path spends only)."""
        if self.recovery is None:
            raise DescriptorError("this output has no recovery leaf")
        return self.recovery.control_block(self.internal_key, self.output_key)

    def signer_index_of(self, pubkey: bytes) -> Optional[int]:
        try:
            return self.participants.index(bytes(pubkey))
        except ValueError:
            return None

    # --- storage -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"descriptor": self.descriptor,
                "participants": [k.hex() for k in self.participants],
                "internal_key": self.internal_key.hex(),
                "output_key": self.output_key.hex()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MusigOutput":
        """Rebuild from storage and check that the stored derived values still match."""
        try:
            out = cls.from_descriptor(d["descriptor"])
        except KeyError as exc:
            raise DescriptorError("stored MuSig2 output has no descriptor") from exc
        if (d.get("internal_key") not in (None, out.internal_key.hex())
                or d.get("output_key") not in (None, out.output_key.hex())):
            raise OutputKeyMismatch("stored MuSig2 output keys do not match its descriptor")
        return out
