"""The states of a session, as enums: one name per state, no string literal elsewhere.

They are ``str`` enums so that events and logs keep their readable values ("ready",
"aborted", ...) and a caller comparing with the documented string still works.
"""
from __future__ import annotations

import enum


class SessionStatus(str, enum.Enum):
    """Where one participant stands in a session (``Session.status``)."""
    CREATED = "created"          # the object exists (our join, or a peer's first message)
    JOINING = "joining"          # we joined; waiting for the coordinator to start an attempt
    READY = "ready"              # an attempt is open; our round 1 not sent yet (manual mode)
    ROUND1 = "round1"            # our public nonce is out; waiting for NONCES
    ROUND1_DONE = "round1-done"  # aggregate nonce checked; round 2 not sent yet
    ROUND2 = "round2"            # our partial signature is out; waiting for FINAL
    FINALIZED = "finalized"      # verified final signature held (closed)
    ABORTED = "aborted"          # ended without a signature (closed)

    @property
    def closed(self) -> bool:
        return self in (SessionStatus.FINALIZED, SessionStatus.ABORTED)

    def __str__(self) -> str:
        return self.value


class CoordinatorPhase(str, enum.Enum):
    """What the coordinator of one epoch waits for."""
    JOINS = "joins"
    NONCES = "nonces"
    PSIGS = "psigs"
    DONE = "done"

    def __str__(self) -> str:
        return self.value


class Evidence(str, enum.Enum):
    """What a culprit is recorded on (docs/sessions.md, "Blame")."""
    INVALID = "invalid"    # a message it signed is cryptographically wrong
    TIMEOUT = "timeout"    # this node itself waited for it past a deadline

    def __str__(self) -> str:
        return self.value
