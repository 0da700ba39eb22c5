"""Our own libsecp256k1 context, with callbacks that never abort the process.

WHY this module exists: libsecp256k1's default illegal-argument callback
prints a message and calls ``abort()``.  Inside Electrum that would kill the
wallet on, for example, a reused (zeroed) MuSig2 secret nonce or any other
API misuse.  We therefore create a context of our own, randomize it (side
channel blinding), and install callbacks that only *record* the message.
libsecp's ARG_CHECK then makes the function return 0, and :func:`call`
turns that record into a typed :class:`LibraryRefusal`.

The callbacks are cffi ``ffi.callback`` objects kept alive at module level:
coincurve's compiled module offers no ``def_extern`` hook, and a callback
that is garbage-collected while libsecp still points at it would crash.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from coincurve._libsecp256k1 import ffi, lib

from .errors import LibraryRefusal

__all__ = ["ffi", "lib", "CTX", "call", "last_refusal"]

_state = threading.local()


def _record(kind: str, message: Any) -> None:
    try:
        text = ffi.string(message).decode("utf-8", "replace") if message != ffi.NULL else ""
    except Exception:  # never let anything escape into C
        text = "<unreadable message>"
    _state.refusal = f"{kind}: {text}"


@ffi.callback("void(char *, void *)")
def _illegal_callback(message, _data) -> None:  # pragma: no cover - exercised via C
    _record("illegal argument", message)


@ffi.callback("void(char *, void *)")
def _error_callback(message, _data) -> None:  # pragma: no cover - exercised via C
    _record("internal error", message)


def _make_context():
    ctx = lib.secp256k1_context_create(lib.SECP256K1_CONTEXT_NONE)
    if ctx == ffi.NULL:
        raise LibraryRefusal("secp256k1_context_create failed")
    # Install the callbacks before anything else can go wrong on this context.
    lib.secp256k1_context_set_illegal_callback(ctx, _illegal_callback, ffi.NULL)
    lib.secp256k1_context_set_error_callback(ctx, _error_callback, ffi.NULL)
    seed = ffi.new("unsigned char[32]", os.urandom(32))
    if lib.secp256k1_context_randomize(ctx, seed) != 1:
        raise LibraryRefusal("secp256k1_context_randomize failed")
    return ffi.gc(ctx, lib.secp256k1_context_destroy)


#: The plugin's context.  Only ``secp256k1_context_randomize`` mutates a
#: context, and we call it once above, so sharing it between threads is safe.
CTX = _make_context()


def last_refusal() -> str | None:
    """The message of the last callback hit on this thread (tests use it)."""
    return getattr(_state, "refusal", None)


def call(fn: Callable[..., int], *args: Any) -> int:
    """Call ``fn(CTX, *args)``; a callback hit raises :class:`LibraryRefusal`.

    The return value is passed through: a plain 0 (invalid input that libsecp
    reports without calling back, e.g. a point not on the curve) is for the
    caller to translate into the right typed error.
    """
    _state.refusal = None
    ret = fn(CTX, *args)
    refusal = _state.refusal
    if refusal is not None:
        _state.refusal = None
        raise LibraryRefusal(f"libsecp256k1 refused ({getattr(fn, '__name__', 'call')}): {refusal}")
    return ret
