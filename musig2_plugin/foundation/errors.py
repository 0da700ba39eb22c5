"""The one root of every error the plugin raises on purpose.

Each layer keeps its own root (``CryptoError``, ``RecordError``, ``EnvelopeError``,
``TransportError``, ``SpecError``, ``CoordinatorError``, ``BridgeError``, ...) so a caller can
guard one layer with one ``except``; every one of those derives from :class:`Musig2Error`, so the
edge (commands, dialogs) can tell "our typed refusal, with a sentence for the user" from a bug
with one ``except`` too, and turn it into a message in one place (``app.errors``).
"""
from __future__ import annotations


class Musig2Error(Exception):
    """Base of every typed error of musig2_plugin (each layer's root derives from it)."""


class BadArgument(Musig2Error):
    """A value the user typed (command argument or settings field) that cannot be used."""
