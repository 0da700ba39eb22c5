"""Peer transport: aiorpcx sessions carrying signed, replay-protected envelopes."""
from .envelope import (AuthenticRefusal, BadSignature, CounterSource, Envelope, EnvelopeError,
                       MalformedEnvelope, MsgType, NotAParticipant, PeerBlocked,
                       ReplayedMessage, StaleMessage, WrongChainMessage)
from .addresses import EndpointNotPublic, check_publishable, publishable_endpoint
from .admission import PushAdmission, PushRefused
from .guards import PeerScore, ReplayGuard, TokenBucket
from .node import BadFetch, Transport, UnknownPayload, UnknownSession
from .peer import ClientPool, Endpoint, PeerIgnored, PeerRefused, PeerUnreachable, TransportError
from .relay import (BadReservation, MalformedRelayFrame, NoReservation, RelayClient,
                    RelayClientSilent, RelayDisabled, RelayFrameTooLarge, RelayFull, RelayLink,
                    RelayQuotaExceeded, RelayRefusal, RelayService, RelayUnreachable)
from .dialback import (DialbackRefusal, DialbackService, Reachability, ask_dialback,
                       probe_reachability)
