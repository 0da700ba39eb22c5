"""The coordinator API: advertise / find / announce / join / rounds / events."""
from .node import (Announcement, ApprovalDenied, CoordinatorError, Evidence, KnownRequest,
                   Musig2Node, NoPublicEndpoint, NotStarted, OversizedPayloadReply,
                   PayloadFetchError, PayloadMismatch, PushOutcome, PushStatus, RequestRefused,
                   WrongChainRequest, request_key)
from .payload import PayloadFormatError, RequestPayload
