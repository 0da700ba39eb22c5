"""The coordinator API: advertise / find / announce / join / rounds / events."""
from .node import (ApprovalDenied, CoordinatorError, KnownRequest, Musig2Node, NotStarted,
                   RequestRefused, request_key)
from .payload import PayloadFormatError, RequestPayload
