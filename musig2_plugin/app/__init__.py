"""The application layer: the co-signing service a wallet runs (request lifecycle, review).

It sits between the Electrum edge (``plugin``, ``commands``, ``qt``) and the core layers
(coordinator, wallet bridge); the edge calls it and it calls the layers below. This module is
its public face: the edge imports from here, never from the modules inside.

The names load on first use (PEP 562 ``__getattr__``): Electrum builds the plugin object in
every daemon at start-up, and that must not pay for importing the coordinator, the DHT and the
transport when all it asks for is the crypto backend's one-line report.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module relative to this package, attribute in it)
_EXPORTS: dict[str, tuple[str, str]] = {
    # types of the coordinator API the edge shows
    "Evidence": ("..coordinator", "Evidence"),
    "TxType": ("..coordinator", "TxType"),
    "EndpointNotPublic": ("..coordinator", "EndpointNotPublic"),
    # the crypto backend in use (which libsecp256k1 binding, and why MuSig2 may be missing),
    # for the edge to report: it has no business importing the crypto layer itself
    "crypto_backend": ("..crypto", "backend"),
    "require_musig": ("..crypto", "require_musig"),
    # the co-signing service and its request state
    **{name: (".cosign", name) for name in (
        "APPROVED", "BROADCAST", "FAILED", "PENDING", "REFUSED", "SIGNED", "RequestEvent",
        "RequestPayloadError", "RequestRole", "RequestState", "RequestStatus", "WalletCosigner",
        "decode_app_data", "encode_app_data", "review_request", "electrum_chain")},
    # errors -> user messages
    **{name: (".errors", name) for name in ("BadArgument", "check_nickname", "user_message")},
    # listen/public settings
    **{name: (".reach", name) for name in (
        "NodeSettingsError", "ReachNotSettled", "ReachSettings", "peers_path",
        "read_reach_settings")},
    # what a wallet signs, computed once
    **{name: (".review", name) for name in ("OwnSpend", "prepare_own_spend", "review_psbt")},
    # the API the commands and dialogs call
    **{name: (".service", name) for name in (
        "advertise", "combine_psbts", "create_output", "find_signers", "tx_type", "withdraw")},
}

__all__ = sorted(_EXPORTS) + ["recovery"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        # not ours: lets ``from .app import recovery`` fall back to importing the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attr)
    globals()[name] = value                 # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:                           # the same names, for type checkers and readers
    from ..coordinator import EndpointNotPublic, Evidence, TxType
    from ..crypto import backend as crypto_backend
    from ..crypto import require_musig
    from . import recovery
    from .cosign import (APPROVED, BROADCAST, FAILED, PENDING, REFUSED, SIGNED, RequestEvent,
                         RequestPayloadError, RequestRole, RequestState, RequestStatus,
                         WalletCosigner, decode_app_data, electrum_chain, encode_app_data,
                         review_request)
    from .errors import BadArgument, check_nickname, user_message
    from .reach import (NodeSettingsError, ReachNotSettled, ReachSettings, peers_path,
                        read_reach_settings)
    from .review import OwnSpend, prepare_own_spend, review_psbt
    from .service import (advertise, combine_psbts, create_output, find_signers, tx_type,
                          withdraw)
