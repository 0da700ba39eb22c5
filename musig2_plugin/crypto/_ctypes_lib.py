"""The fallback backend: the libsecp256k1 Electrum already loaded (electrum_ecc), via ctypes.

WHY: Electrum's binary bundles (AppImage, Windows, macOS) ship electrum_ecc and its
libsecp256k1 but not coincurve. Loading that same library a second time by its path gives
the process's existing mapping (the dynamic loader counts references), so nothing new is
loaded, while our function objects (with our ``argtypes``) stay separate from
electrum_ecc's: we never change how Electrum itself calls the library.

The MuSig2 code is written once against a small cffi-shaped surface (``new``, ``buffer``,
``NULL``, ``sizeof``, ``memmove``) so that both backends run the very same code paths;
:class:`CtypesFFI` provides that surface over ctypes. Every libsecp256k1 struct is opaque
here: an array of the struct's size in bytes (the sizes are fixed by libsecp256k1's ABI).
"""
from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, c_char_p, c_int, c_size_t, c_uint, c_void_p
from typing import Any, Callable

__all__ = ["CtypesFFI", "load", "STRUCT_SIZES", "MUSIG_FUNCTIONS", "CALLBACK_TYPE"]

#: Sizes of libsecp256k1's opaque structs (include/secp256k1*.h, ABI of 0.5/0.6).
STRUCT_SIZES = {
    "secp256k1_pubkey": 64,
    "secp256k1_xonly_pubkey": 64,
    "secp256k1_keypair": 96,
    "secp256k1_musig_keyagg_cache": 197,
    "secp256k1_musig_secnonce": 132,
    "secp256k1_musig_pubnonce": 132,
    "secp256k1_musig_aggnonce": 132,
    "secp256k1_musig_session": 133,
    "secp256k1_musig_partial_sig": 36,
    "unsigned char": 1,
}

#: ``void (*)(const char *message, void *data)``: libsecp256k1's callback type.
CALLBACK_TYPE = CFUNCTYPE(None, c_char_p, c_void_p)

_P = c_void_p
# name -> (argtypes, restype). Pointers are all c_void_p: the structs are opaque bytes.
_BASE_FUNCTIONS: dict[str, tuple[list, Any]] = {
    "secp256k1_context_create": ([c_uint], c_void_p),
    "secp256k1_context_destroy": ([_P], None),
    "secp256k1_context_set_illegal_callback": ([_P, CALLBACK_TYPE, _P], None),
    "secp256k1_context_set_error_callback": ([_P, CALLBACK_TYPE, _P], None),
    "secp256k1_context_randomize": ([_P, _P], c_int),
    "secp256k1_ec_pubkey_parse": ([_P, _P, _P, c_size_t], c_int),
    "secp256k1_ec_pubkey_serialize": ([_P, _P, _P, _P, c_uint], c_int),
    "secp256k1_ec_pubkey_create": ([_P, _P, _P], c_int),
    "secp256k1_ec_pubkey_sort": ([_P, _P, c_size_t], c_int),
    "secp256k1_ec_seckey_verify": ([_P, _P], c_int),
    "secp256k1_ecdh": ([_P, _P, _P, _P, _P, _P], c_int),
    "secp256k1_xonly_pubkey_from_pubkey": ([_P, _P, _P, _P], c_int),
    "secp256k1_xonly_pubkey_serialize": ([_P, _P, _P], c_int),
    "secp256k1_xonly_pubkey_parse": ([_P, _P, _P], c_int),
    "secp256k1_keypair_create": ([_P, _P, _P], c_int),
    "secp256k1_keypair_pub": ([_P, _P, _P], c_int),
    "secp256k1_schnorrsig_sign32": ([_P, _P, _P, _P, _P], c_int),
    "secp256k1_schnorrsig_verify": ([_P, _P, _P, c_size_t, _P], c_int),
}
#: The MuSig2 module's functions that the plugin calls (libsecp256k1's --enable-module-musig).
_MUSIG_SIGNATURES: dict[str, tuple[list, Any]] = {
    "secp256k1_musig_pubnonce_parse": ([_P, _P, _P], c_int),
    "secp256k1_musig_pubnonce_serialize": ([_P, _P, _P], c_int),
    "secp256k1_musig_aggnonce_parse": ([_P, _P, _P], c_int),
    "secp256k1_musig_aggnonce_serialize": ([_P, _P, _P], c_int),
    "secp256k1_musig_partial_sig_parse": ([_P, _P, _P], c_int),
    "secp256k1_musig_partial_sig_serialize": ([_P, _P, _P], c_int),
    "secp256k1_musig_pubkey_agg": ([_P, _P, _P, _P, c_size_t], c_int),
    "secp256k1_musig_pubkey_get": ([_P, _P, _P], c_int),
    "secp256k1_musig_pubkey_ec_tweak_add": ([_P, _P, _P, _P], c_int),
    "secp256k1_musig_pubkey_xonly_tweak_add": ([_P, _P, _P, _P], c_int),
    "secp256k1_musig_nonce_gen": ([_P, _P, _P, _P, _P, _P, _P, _P, _P], c_int),
    "secp256k1_musig_nonce_agg": ([_P, _P, _P, c_size_t], c_int),
    "secp256k1_musig_nonce_process": ([_P, _P, _P, _P, _P], c_int),
    "secp256k1_musig_partial_sign": ([_P, _P, _P, _P, _P, _P], c_int),
    "secp256k1_musig_partial_sig_verify": ([_P, _P, _P, _P, _P, _P], c_int),
    "secp256k1_musig_partial_sig_agg": ([_P, _P, _P, _P, c_size_t], c_int),
}
MUSIG_FUNCTIONS = tuple(_MUSIG_SIGNATURES)


class CtypesFFI:
    """Just the part of cffi's ``FFI`` that crypto/ uses, over ctypes (see module doc)."""

    NULL = None

    @staticmethod
    def _struct_size(name: str) -> int:
        try:
            return STRUCT_SIZES[name.strip()]
        except KeyError:
            raise TypeError(f"unknown libsecp256k1 type {name!r}") from None

    def new(self, ctype: str, init: Any = None):
        """``T *`` (one zeroed struct), ``T *[]`` (array of pointers to ``init``'s structs),
        ``unsigned char[N]`` (optionally filled from ``init``), ``size_t *`` / ``int *``."""
        ctype = ctype.strip()
        if ctype.endswith("*[]"):
            items = list(init or ())
            arr = (c_void_p * len(items))(*[ctypes.addressof(x) for x in items])
            arr._keepalive = items  # the structs must outlive the pointer array
            return arr
        if ctype == "size_t *":
            return ctypes.pointer(c_size_t(0 if init is None else int(init)))
        if ctype == "int *":
            return ctypes.pointer(c_int(0 if init is None else int(init)))
        if ctype.endswith("]"):
            base, _, count = ctype[:-1].partition("[")
            n = int(count) if count else len(init)
            buf = (ctypes.c_ubyte * (n * self._struct_size(base)))()
            if init is not None:
                data = bytes(init)
                if len(data) > len(buf):   # cffi raises here too; never write past the buffer
                    raise IndexError(f"{len(data)} bytes do not fit in {ctype}")
                ctypes.memmove(buf, data, len(data))
            return buf
        if ctype.endswith("*"):
            return (ctypes.c_ubyte * self._struct_size(ctype[:-1]))()
        raise TypeError(f"unsupported type {ctype!r}")

    @staticmethod
    def buffer(obj, size: int | None = None) -> memoryview:
        view = memoryview(obj).cast("B")
        return view if size is None else view[:size]

    def sizeof(self, ctype: str) -> int:
        return self._struct_size(ctype)

    @staticmethod
    def memmove(dest, src: bytes, n: int) -> None:
        ctypes.memmove(dest, bytes(src), n)


class _Lib:
    """Attribute bag: the configured functions plus the two flags crypto/ needs."""

    SECP256K1_CONTEXT_NONE = 1          # SECP256K1_FLAGS_TYPE_CONTEXT
    SECP256K1_EC_COMPRESSED = 258       # SECP256K1_FLAGS_TYPE_COMPRESSION | BIT_COMPRESSION


def _bind(cdll: ctypes.CDLL, table: dict[str, tuple[list, Any]], target: _Lib) -> list[str]:
    """Configure each function of ``table`` onto ``target``; return the names missing."""
    missing = []
    for name, (argtypes, restype) in table.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.argtypes = argtypes
        fn.restype = restype
        setattr(target, name, fn)
    return missing


def library_path() -> str:
    """Path of the libsecp256k1 that electrum_ecc loaded (ImportError if there is none)."""
    from electrum_ecc import ecc_fast  # noqa: PLC0415  (only where Electrum is present)
    loaded = getattr(ecc_fast, "_libsecp256k1", None)
    if loaded is None:
        raise ImportError("electrum_ecc has not loaded a libsecp256k1")
    return loaded._name


def load(path: str | None = None) -> tuple[_Lib, list[str], list[str], str]:
    """Open libsecp256k1 (electrum_ecc's unless ``path``): (lib, missing base functions,
    missing MuSig2 functions, path)."""
    path = path or library_path()
    cdll = ctypes.CDLL(path)
    lib = _Lib()
    lib._cdll = cdll
    missing_base = _bind(cdll, _BASE_FUNCTIONS, lib)
    missing_musig = _bind(cdll, _MUSIG_SIGNATURES, lib)
    return lib, missing_base, missing_musig, path


def make_callback(fn: Callable[[bytes | None], None]):
    """A C callback around ``fn(message)``; the caller keeps the returned object alive."""
    def trampoline(message, _data) -> None:  # pragma: no cover - called from C
        fn(message)
    return CALLBACK_TYPE(trampoline)

