"""The coordinator API: advertise / find / announce / join / rounds / events."""
from .node import (Announcement, ApprovalDenied, CoordinatorError, KnownRequest, Musig2Node,
                   NotStarted, OversizedPayloadReply, PayloadFetchError, PayloadMismatch, PushOutcome,
                   RequestRefused, request_key)
from .payload import PayloadFormatError, RequestPayload
