"""The development backend: libsecp256k1 0.6 as bundled by coincurve, through its cffi module.

WHY keep it: coincurve is what the development environment and CI install, and its cffi
calls are the fastest way into libsecp256k1 from Python. Importing this module raises
ImportError where coincurve is not installed (Electrum's binary bundles); backend.py then
falls back to the ctypes backend.
"""
from __future__ import annotations

from typing import Callable

from coincurve._libsecp256k1 import ffi, lib

__all__ = ["ffi", "lib", "make_callback", "MISSING_BASE", "MISSING_MUSIG", "PATH"]

#: coincurve 21 always carries every module we call; kept for the same shape as ctypes'.
MISSING_BASE: list[str] = []
MISSING_MUSIG: list[str] = [] if hasattr(lib, "secp256k1_musig_pubkey_agg") else ["secp256k1_musig_*"]
PATH = "coincurve._libsecp256k1"


def make_callback(fn: Callable[[bytes | None], None]):
    """A C callback around ``fn(message)``. cffi's ``ffi.callback`` is used because coincurve's
    compiled module offers no ``def_extern`` hook; the caller keeps the object alive."""
    @ffi.callback("void(char *, void *)")
    def trampoline(message, _data) -> None:  # pragma: no cover - called from C
        try:
            text = ffi.string(message) if message != ffi.NULL else None
        except Exception:  # never let anything escape into C
            text = b"<unreadable message>"
        fn(text)
    return trampoline
