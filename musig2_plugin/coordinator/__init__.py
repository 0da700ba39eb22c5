"""The coordinator API: advertise / find / announce / join / rounds / events."""
from .node import (Announcement, ApprovalDenied, CoordinatorError, Evidence, KnownRequest,
                   Musig2Node, NoPublicEndpoint, NotStarted, OversizedPayloadReply,
                   PayloadFetchError, PayloadMismatch, PushOutcome, PushStatus, RequestRefused,
                   WrongChainRequest, request_key)
from .payload import PayloadFormatError, RequestPayload
from .payload_crypto import PayloadError
# The endpoint rule (what may be published on which chain), for the settings the edge checks.
from ..transport import EndpointNotPublic, check_publishable
# Types of the coordinator API's arguments and results, re-exported so the layers above (the
# application service) need no import of the records or session layers (docs/architecture.md).
from ..records import TxType
from ..session import Tweak
