"""Our own libsecp256k1 context, with callbacks that never abort the process.

WHY this module exists: libsecp256k1's default illegal-argument callback
prints a message and calls ``abort()``.  Inside Electrum that would kill the
wallet on, for example, a reused (zeroed) MuSig2 secret nonce or any other
API misuse.  We therefore create a context of our own, randomize it (side
channel blinding), and install callbacks that only *record* the message.
libsecp's ARG_CHECK then makes the function return 0, and :func:`call`
turns that record into a typed :class:`LibraryRefusal`.

The library comes from backend.py (coincurve's cffi module, or electrum_ecc's
libsecp256k1 through ctypes).  The C callbacks are built by the backend and
kept alive at module level: a callback that is garbage-collected while libsecp
still points at it would crash.  The context is made on first use, so the
plugin still imports (and can say what is missing) when the library lacks the
MuSig2 module or is absent.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from . import backend
from .backend import ffi, lib
from .errors import LibraryRefusal

__all__ = ["ffi", "lib", "call", "context", "last_refusal", "BACKEND"]

#: Name of the backend in use: "coincurve" or "electrum_ecc" (or "none").
BACKEND = backend.NAME

_state = threading.local()


def _record(kind: str, message: bytes | None) -> None:
    try:
        text = message.decode("utf-8", "replace") if message is not None else ""
    except Exception:  # never let anything escape into C
        text = "<unreadable message>"
    _state.refusal = f"{kind}: {text}"


# Kept alive for the life of the process (the context keeps pointing at them).
_ILLEGAL_CALLBACK = backend.make_callback(lambda msg: _record("illegal argument", msg))
_ERROR_CALLBACK = backend.make_callback(lambda msg: _record("internal error", msg))

_ctx: Any = None
_ctx_lock = threading.Lock()


def _make_context():
    ctx = lib.secp256k1_context_create(lib.SECP256K1_CONTEXT_NONE)
    if not ctx:
        raise LibraryRefusal("secp256k1_context_create failed")
    # Install the callbacks before anything else can go wrong on this context.
    lib.secp256k1_context_set_illegal_callback(ctx, _ILLEGAL_CALLBACK, ffi.NULL)
    lib.secp256k1_context_set_error_callback(ctx, _ERROR_CALLBACK, ffi.NULL)
    seed = ffi.new("unsigned char[32]", os.urandom(32))
    if lib.secp256k1_context_randomize(ctx, seed) != 1:
        raise LibraryRefusal("secp256k1_context_randomize failed")
    # Never destroyed: one context per process, pointing at callbacks that live as long.
    return ctx


def context():
    """The plugin's context, created on first use.

    Only ``secp256k1_context_randomize`` mutates a context, and we call it once,
    so sharing it between threads is safe.
    """
    global _ctx
    if _ctx is None:
        with _ctx_lock:
            if _ctx is None:
                _ctx = _make_context()
    return _ctx


def last_refusal() -> str | None:
    """The message of the last callback hit on this thread (tests use it)."""
    return getattr(_state, "refusal", None)


def call(fn: Callable[..., int], *args: Any) -> int:
    """Call ``fn(ctx, *args)``; a callback hit raises :class:`LibraryRefusal`.

    The return value is passed through: a plain 0 (invalid input that libsecp
    reports without calling back, e.g. a point not on the curve) is for the
    caller to translate into the right typed error.
    """
    ctx = _ctx if _ctx is not None else context()
    _state.refusal = None
    ret = fn(ctx, *args)
    refusal = _state.refusal
    if refusal is not None:
        _state.refusal = None
        raise LibraryRefusal(f"libsecp256k1 refused ({getattr(fn, '__name__', 'call')}): {refusal}")
    return ret
