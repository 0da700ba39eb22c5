"""Errors of the session layer: refusals of signed messages, and the end of a session."""
from __future__ import annotations

from ..foundation.errors import Musig2Error
from ..transport import AuthenticRefusal, UnknownSession
from .states import Evidence


class NotCoordinator(AuthenticRefusal):
    """A coordinator-only message from someone who is not the coordinator of that epoch."""


class NotOurEpoch(UnknownSession):
    """A coordinator message for an epoch we are not in: refused, changes nothing, and not
    charged to its signer (an honest coordinator we left, or one we have not reached yet)."""


class InvalidContribution(AuthenticRefusal):
    """A signed message whose content is cryptographically wrong (bad nonce, bad partial sig)."""


class SessionAborted(Musig2Error):
    """A session ended without a signature.

    ``culprits``: whom *this node* blames, on its own evidence only (``evidence`` maps each
    to ``Evidence.INVALID`` or ``Evidence.TIMEOUT``). ``reported``: the culprits a
    coordinator's ABORT named: its claim, which nobody else can check, kept for display and
    never recorded as blame.
    """

    def __init__(self, reason: str, culprits: tuple[bytes, ...] = (),
                 evidence: dict[bytes, Evidence] | None = None,
                 reported: tuple[bytes, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.culprits = culprits
        self.evidence = dict(evidence or {})
        self.reported = reported
