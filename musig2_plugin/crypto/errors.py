"""Typed errors of the crypto layer.

Errors about data received from others carry ``index``: the position of the
signer who supplied it, so the session layer can name (and block) the culprit.
"""
from __future__ import annotations

from ..foundation.errors import Musig2Error


class CryptoError(Musig2Error):
    """Base of every error raised by musig2_plugin.crypto."""


class InvalidSecretKey(CryptoError):
    pass


class InvalidMessageLength(CryptoError):
    """libsecp256k1's MuSig2 and our BIP-340 use sign exactly 32-byte messages.

    BIP-327 allows any length, but libsecp256k1 0.6.0's MuSig2 API takes a
    32-byte ``msg32`` only; every message we sign is a sighash anyway.
    """


class InvalidTweak(CryptoError):
    pass


class BlameError(CryptoError):
    """An error caused by one signer's contribution; ``index`` names that signer."""

    def __init__(self, index: int | None, reason: str = ""):
        self.index = index
        self.reason = reason
        where = f" (signer index {index})" if index is not None else ""
        super().__init__(f"{self.__class__.__name__}{where}: {reason}".rstrip(": "))


class InvalidPublicKey(BlameError):
    pass


class InvalidPubNonce(BlameError):
    pass


class InvalidPartialSig(BlameError):
    pass


class InvalidAggNonce(BlameError):
    """The aggregate nonce does not parse: the coordinator (index None) sent garbage."""


class NonceReuseError(CryptoError):
    """A secret nonce was offered for a second signature; refused before libsecp sees it."""


class LibraryRefusal(CryptoError):
    """libsecp256k1 returned failure or called its illegal-argument callback."""


class CryptoUnavailable(CryptoError):
    """No usable libsecp256k1 with the MuSig2 module: the node must not start.

    Its message is the one line the plugin shows the user (plugins dialog, log): which
    library was found and what it lacks.
    """
