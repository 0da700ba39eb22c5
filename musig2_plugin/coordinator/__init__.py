"""The coordinator API: advertise / find / announce / join / rounds / events."""
from .node import (ApprovalDenied, CoordinatorError, KnownRequest, Musig2Node, NoPublicEndpoint,
                   NotStarted,
                   OversizedPayloadReply, PayloadFetchError, PayloadMismatch, RequestRefused,
                   WrongChainRequest, request_key)
from .payload import PayloadFormatError, RequestPayload
