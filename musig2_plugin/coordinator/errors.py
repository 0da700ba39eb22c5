"""Errors of the coordinator API (kept apart so the payload fetcher can raise them too)."""
from __future__ import annotations

from ..foundation.errors import Musig2Error


class CoordinatorError(Musig2Error):
    """Base of the coordinator API's errors."""


class NoPublicEndpoint(CoordinatorError):
    """Advertising needs an endpoint strangers can reach, and this node has none on its chain
    (it listens on loopback/a private address and no public host is set)."""


class RequestRefused(CoordinatorError, ValueError):
    """A signing request we cannot act on (not for us, tampered, unknown)."""


class WrongChainRequest(RequestRefused):
    """A signing request of another chain: never registered, never signed."""


class PayloadFetchError(RequestRefused):
    """A request's committed payload could not be obtained from its creator (unreachable,
    refused, timed out, malformed answer). Nothing is registered."""


class PayloadMismatch(PayloadFetchError):
    """The bytes the creator served do not match the SHA-256 and length its signed record
    commits to: never decrypted, nothing registered."""


class OversizedPayloadReply(PayloadFetchError):
    """The creator answered with more bytes than we asked for."""
