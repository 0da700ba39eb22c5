"""The application layer: the co-signing service a wallet runs (request lifecycle, review).

It sits between the Electrum edge (``plugin``, ``commands``, ``qt``) and the core layers
(coordinator, wallet bridge); the edge calls it and it calls the layers below. This module is
its public face: the edge imports from here, never from the modules inside.
"""
from ..coordinator import Evidence, TxType
# The crypto backend in use (which libsecp256k1 binding, and why MuSig2 may be missing), for the
# edge to report: it has no business importing the crypto layer itself.
from ..crypto import backend as crypto_backend
from ..crypto import require_musig
from .cosign import (APPROVED, BROADCAST, FAILED, PENDING, REFUSED, SIGNED, RequestEvent,
                     RequestPayloadError, RequestRole, RequestState, RequestStatus, WalletCosigner,
                     decode_app_data, encode_app_data, review_request)
from .cosign import electrum_chain
from .errors import BadArgument, check_nickname, user_message
from .reach import NodeSettingsError, ReachSettings, peers_path, read_reach_settings
from ..coordinator import EndpointNotPublic
from . import recovery                    # recovery outputs: plan, sign, earliest_recovery
from .review import OwnSpend, prepare_own_spend, review_psbt
from .service import (advertise, combine_psbts, create_output, find_signers, tx_type,
                      withdraw)
