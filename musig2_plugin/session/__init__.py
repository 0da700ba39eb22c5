"""MuSig2 signing sessions: state machine, coordinator election, timeouts and blame."""
from .errors import InvalidContribution, NotCoordinator, NotOurEpoch, SessionAborted
from .machine import Session
from .states import CoordinatorPhase, Evidence, SessionStatus
from .manager import SessionLimit, SessionManager
from .messages import BadBody, decode_body, encode_body
from .endpoints import EndpointBook
from .spec import (TWEAK_NONE, TWEAK_TAPROOT, SessionSpec, SpecError, Tweak, compute_session_id,
                   election_order)
