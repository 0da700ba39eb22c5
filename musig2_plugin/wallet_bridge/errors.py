"""Typed errors of the Electrum edge.

Every refusal a user or a peer can trigger has its own class, so the command
layer can turn it into a clear JSON error and the tests can assert *which*
check fired. Errors about one input of a transaction carry ``input_index``.
"""
from __future__ import annotations

from ..foundation.errors import Musig2Error


class BridgeError(Musig2Error):
    """Base of every error raised by musig2_plugin.wallet_bridge."""


# --- wallets and keys --------------------------------------------------------
class UnsupportedWallet(BridgeError):
    """This kind of wallet cannot hold a participant key (yet)."""


class PasswordRequired(BridgeError):
    """The wallet is encrypted and no password was given."""


class WrongPassword(BridgeError):
    pass


class StoredKeyMismatch(BridgeError):
    """The participant key cached in wallet storage is not the one the keystore derives."""


# --- outputs and descriptors -------------------------------------------------
class InvalidParticipants(BridgeError):
    """Too few/many keys, a duplicate, or a byte string that is not a public key."""


class DescriptorError(BridgeError):
    """A descriptor text that is not ``tr(musig(K1,...,Kn))`` with valid keys and checksum."""


class OutputKeyMismatch(BridgeError):
    """Two independent computations of the taproot output key disagree."""


# --- recovery leaves -----------------------------------------------------------
class RecoveryPolicyError(DescriptorError):
    """A recovery leaf (policy text, miniscript or script) we do not write ourselves."""


class RecoveryPolicyMismatch(RecoveryPolicyError):
    """A descriptor whose script tree is not the policy its creator announced."""


class RecoveryNotMature(BridgeError):
    """A recovery spend before the relative timelock has passed (BIP-68 would refuse it)."""


# --- PSBTs and spends --------------------------------------------------------
class MalformedPsbt(BridgeError):
    pass


class PsbtFieldError(BridgeError):
    """A BIP-373 (or taproot) PSBT field with a wrong length, duplicate or bad key.

    ``section`` says whether ``index`` counts inputs or outputs: a user told
    "input 1" about a field of output 1 looks at the wrong part of the PSBT.
    ``input_index``/``output_index`` name it; the other one is None.
    """

    def __init__(self, index: int | None, reason: str, *, section: str = "input"):
        if section not in ("input", "output"):
            raise ValueError(f"unknown PSBT section {section!r}")
        self.section = section
        self.input_index = index if section == "input" else None
        self.output_index = index if section == "output" else None
        self.reason = reason
        where = f"{section} {index}: " if index is not None else ""
        super().__init__(where + reason)


class InputError(BridgeError):
    """Base of errors about one input of a spend; ``input_index`` names it."""

    def __init__(self, input_index: int, reason: str):
        self.input_index = input_index
        self.reason = reason
        super().__init__(f"input {input_index}: {reason}")


class MissingInputInfo(InputError):
    """The PSBT lacks an input's amount or script: BIP-341 signs all of them, so we refuse."""


class NotAMusigInput(InputError):
    """The input spends nothing we know as a MuSig2 output of the given keys."""


class ParticipantMismatch(InputError):
    """The input's participant keys do not aggregate to its script, or do not include us."""


class SighashMismatch(InputError):
    """The message a request asks us to sign is not the BIP-341 sighash of its transaction."""


class InvalidFinalSignature(InputError):
    """An aggregate signature that does not verify under the input's output key."""


class SpendBuildError(BridgeError):
    """Amounts, fee or outputs that cannot make a valid spend."""


class BroadcastError(BridgeError):
    pass


class Offline(BridgeError):
    """The wallet has no network connection (or outputs are not followed yet)."""


class NoCoins(BridgeError):
    """The chosen MuSig2 outputs hold no coins (as far as the wallet's server says)."""
