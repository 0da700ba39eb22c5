"""MuSig2 signing sessions: state machine, coordinator election, timeouts and blame."""
from .machine import (ABORTED, FINALIZED, InvalidContribution, NotCoordinator, Session,
                      SessionAborted)
from .manager import SessionLimit, SessionManager
from .messages import BadBody, decode_body, encode_body
from .endpoints import EndpointBook
from .spec import (TWEAK_NONE, TWEAK_TAPROOT, SessionSpec, SpecError, Tweak, compute_session_id,
                   election_order)
