"""Which libsecp256k1 the crypto layer calls, chosen once at import.

WHY two backends: coincurve (cffi) is the development and CI backend, but Electrum's
binary bundles do not ship it; they do ship electrum_ecc, which has already loaded a
libsecp256k1 (0.6 builds carry the MuSig2 module). So: coincurve where importable, else
electrum_ecc's library through ctypes. Both expose the same cffi-shaped ``ffi`` and the
same ``lib`` function names, so secp.py, bip340.py and musig.py are one code path.

``MUSIG2_CRYPTO_BACKEND`` (``coincurve`` / ``electrum_ecc``; default: the first that
works) forces one; the test runner uses it to run the crypto suite once per backend.

A library without the MuSig2 functions is not an import error: the plugin must still load
inside Electrum to say so. :data:`PROBLEM` then holds the one line for the user, every
missing function raises :class:`CryptoUnavailable` when called, and :func:`require_musig`
is what the node calls before it starts.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from .errors import CryptoUnavailable

__all__ = ["NAME", "PATH", "PROBLEM", "ffi", "lib", "make_callback", "require_musig",
           "ENV_BACKEND", "BACKENDS"]

ENV_BACKEND = "MUSIG2_CRYPTO_BACKEND"
BACKENDS = ("coincurve", "electrum_ecc")


def _unavailable(name: str, line: str) -> Callable[..., Any]:
    def stub(*_args: Any) -> Any:
        raise CryptoUnavailable(line)
    stub.__name__ = name
    return stub


class _NoLib:
    """Stands in for ``lib`` when no library could be opened at all."""

    SECP256K1_CONTEXT_NONE = 1
    SECP256K1_EC_COMPRESSED = 258

    def __init__(self, line: str):
        self._line = line

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return _unavailable(name, self._line)


def _load_coincurve():
    from . import _cffi_lib
    return ("coincurve", _cffi_lib.ffi, _cffi_lib.lib, _cffi_lib.make_callback,
            _cffi_lib.MISSING_BASE, _cffi_lib.MISSING_MUSIG, _cffi_lib.PATH)


def _load_electrum_ecc():
    from . import _ctypes_lib
    lib, missing_base, missing_musig, path = _ctypes_lib.load()
    return ("electrum_ecc", _ctypes_lib.CtypesFFI(), lib, _ctypes_lib.make_callback,
            missing_base, missing_musig, path)


def _select(choice: str):
    """(name, ffi, lib, make_callback, path, problem line or None)."""
    order = [choice] if choice in BACKENDS else list(BACKENDS)
    failures = []
    if choice and choice not in BACKENDS:
        order = []   # a mistyped forced choice must not silently run something else
        failures.append(f"{ENV_BACKEND}={choice!r} is not one of {', '.join(BACKENDS)}")
    for candidate in order:
        try:
            name, ffi_, lib_, cb, missing_base, missing_musig, path = (
                _load_coincurve() if candidate == "coincurve" else _load_electrum_ecc())
        except Exception as exc:  # noqa: BLE001  a broken backend falls through to the next
            # ImportError (not installed), OSError (library not loadable), or anything a broken
            # install raises: the plugin must still import and say what is wrong, in one line.
            failures.append(f"{candidate}: {type(exc).__name__}: {exc}")
            continue
        problem = None
        missing = missing_base + missing_musig
        if missing:
            what = ("the MuSig2 module" if missing_musig and not missing_base
                    else "functions the plugin needs")
            problem = (f"MuSig2 co-signing is unavailable: the libsecp256k1 that {name} loaded "
                       f"({os.path.basename(str(path))}) lacks {what} ({len(missing)} functions "
                       f"missing, e.g. {missing[0]}); the co-signing node will not start")
            for fn_name in missing:
                setattr(lib_, fn_name, _unavailable(fn_name, problem))
        return name, ffi_, lib_, cb, path, problem
    line = ("MuSig2 co-signing is unavailable: no libsecp256k1 found (" + "; ".join(failures)
            + "); the co-signing node will not start")
    from ._ctypes_lib import CtypesFFI, make_callback as ct_cb
    return "none", CtypesFFI(), _NoLib(line), ct_cb, None, line


NAME, ffi, lib, make_callback, PATH, PROBLEM = _select(os.environ.get(ENV_BACKEND, "").strip())


def require_musig() -> None:
    """Raise :class:`CryptoUnavailable` (its message: the one line) if MuSig2 cannot run."""
    if PROBLEM is not None:
        raise CryptoUnavailable(PROBLEM)
