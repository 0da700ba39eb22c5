"""Typed errors of the records layer.

Records arrive from strangers over the DHT, so every way a record can be
unacceptable has its own class: the DHT counts refusals per class (its
``stats``) and the UI can say *why* something was dropped. Every one derives
from ``RecordError`` so callers guard a decode with a single ``except``.
"""
from __future__ import annotations

from ..foundation.errors import Musig2Error


class RecordError(Musig2Error):
    """Base of every error raised when building or decoding a record."""


class MalformedRecord(RecordError):
    """Bytes that are not a canonical encoding: truncated, trailing, bad field."""


class InvalidField(MalformedRecord):
    """A field's value is outside its type or bound (also raised by ``create``)."""


class UnknownRecordKind(MalformedRecord):
    pass


class UnsupportedVersion(RecordError):
    """A version byte this code does not speak; never guessed at."""


class WrongChain(RecordError):
    """A well-formed record of another chain (testnet on mainnet, ...): never used here."""


class OversizedRecord(RecordError):
    pass


class InvalidSignature(RecordError):
    """The BIP-340 signature does not verify under the record's owner key."""


class ExpiredRecord(RecordError):
    pass


class FutureRecord(RecordError):
    """created_at lies further in the future than the allowed clock skew."""
