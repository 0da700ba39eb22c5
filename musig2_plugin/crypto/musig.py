"""BIP-327 MuSig2 over libsecp256k1's musig module (through the backend of backend.py).

Design points (see docs/crypto.md):

* Every public key, public nonce and partial signature received from others is
  parsed *one by one* before an array call, because libsecp's array functions
  return 0 without saying which element was bad.  Errors carry ``index``.
* :class:`SecretNonce` is one-shot.  It lives only in memory, cannot be
  copied, pickled or exported, and is marked consumed *before* libsecp sees it,
  so a second use raises :class:`NonceReuseError` without touching the library.
* Messages are exactly 32 bytes (sighashes); libsecp's MuSig2 API has no other
  length.  Anything else raises :class:`InvalidMessageLength`.
* A coordinator that builds the session with :meth:`SigningSession.from_pubnonces`
  can attribute every failure: a public nonce that does not parse is blamed at
  nonce aggregation; one that parses but was altered makes *that* signer's
  partial signature fail verification.  :meth:`SigningSession.aggregate`
  checks the final signature and, only if it fails, each partial signature
  against its sender's public nonce, raising InvalidPartialSig(index).
"""
from __future__ import annotations

import os
import threading
from typing import Sequence

from ..foundation.constants import (AGGNONCE_LEN, MAX_SIGNERS, MESSAGE_LEN, PARTIAL_SIG_LEN, PUBKEY_LEN,
                         PUBNONCE_LEN)
from .bip340 import keypair, keypair_pub, schnorr_verify, tagged_hash
from .errors import (CryptoError, InvalidAggNonce, InvalidMessageLength, InvalidPartialSig,
                     InvalidPubNonce, InvalidPublicKey, InvalidSecretKey, InvalidTweak,
                     LibraryRefusal, NonceReuseError)
from .secp import call, ffi, lib

__all__ = ["key_sort", "KeyAggContext", "SecretNonce", "nonce_gen", "nonce_agg",
           "SigningSession", "parse_pubkey", "parse_pubnonce", "parse_partial_sig"]


# --- small helpers ------------------------------------------------------------

def _is_bytes(value: object, length: int) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == length


def _check_msg(msg: object) -> bytes:
    if not isinstance(msg, (bytes, bytearray)):
        raise InvalidMessageLength("message must be bytes")
    if len(msg) != MESSAGE_LEN:
        raise InvalidMessageLength(
            f"MuSig2 messages must be exactly {MESSAGE_LEN} bytes (a sighash); got {len(msg)}: "
            "libsecp256k1's MuSig2 API signs 32-byte messages only")
    return bytes(msg)


def parse_pubkey(pubkey: bytes, index: int | None = None):
    """33-byte compressed key -> ``secp256k1_pubkey *``; blame ``index`` if invalid."""
    if not _is_bytes(pubkey, PUBKEY_LEN) or pubkey[0] not in (2, 3):
        raise InvalidPublicKey(index, "public key must be 33 bytes, compressed (02/03 prefix)")
    out = ffi.new("secp256k1_pubkey *")
    if call(lib.secp256k1_ec_pubkey_parse, out, bytes(pubkey), PUBKEY_LEN) != 1:
        raise InvalidPublicKey(index, "not a valid point on secp256k1")
    return out


def _serialize_pubkey(pk) -> bytes:
    buf = ffi.new("unsigned char[33]")
    size = ffi.new("size_t *", 33)
    if call(lib.secp256k1_ec_pubkey_serialize, buf, size, pk, lib.SECP256K1_EC_COMPRESSED) != 1:
        raise LibraryRefusal("secp256k1_ec_pubkey_serialize failed")
    return bytes(ffi.buffer(buf, 33))


def parse_pubnonce(pubnonce: bytes, index: int | None = None):
    """66-byte public nonce -> ``secp256k1_musig_pubnonce *``; blame ``index``."""
    if not _is_bytes(pubnonce, PUBNONCE_LEN):
        raise InvalidPubNonce(index, f"public nonce must be {PUBNONCE_LEN} bytes")
    out = ffi.new("secp256k1_musig_pubnonce *")
    if call(lib.secp256k1_musig_pubnonce_parse, out, bytes(pubnonce)) != 1:
        raise InvalidPubNonce(index, "public nonce is not two valid compressed points")
    return out


def parse_partial_sig(psig: bytes, index: int | None = None):
    """32-byte partial signature -> ``secp256k1_musig_partial_sig *``; blame ``index``."""
    if not _is_bytes(psig, PARTIAL_SIG_LEN):
        raise InvalidPartialSig(index, f"partial signature must be {PARTIAL_SIG_LEN} bytes")
    out = ffi.new("secp256k1_musig_partial_sig *")
    if call(lib.secp256k1_musig_partial_sig_parse, out, bytes(psig)) != 1:
        raise InvalidPartialSig(index, "partial signature is not below the group order")
    return out


def _parse_aggnonce(aggnonce: bytes):
    if not _is_bytes(aggnonce, AGGNONCE_LEN):
        raise InvalidAggNonce(None, f"aggregate nonce must be {AGGNONCE_LEN} bytes")
    out = ffi.new("secp256k1_musig_aggnonce *")
    if call(lib.secp256k1_musig_aggnonce_parse, out, bytes(aggnonce)) != 1:
        raise InvalidAggNonce(None, "aggregate nonce is not two valid points (or infinity)")
    return out


def _xonly_of(pk) -> bytes:
    xo = ffi.new("secp256k1_xonly_pubkey *")
    if call(lib.secp256k1_xonly_pubkey_from_pubkey, xo, ffi.NULL, pk) != 1:
        raise LibraryRefusal("xonly_pubkey_from_pubkey failed")
    out = ffi.new("unsigned char[32]")
    call(lib.secp256k1_xonly_pubkey_serialize, out, xo)
    return bytes(ffi.buffer(out, 32))


# --- key sorting and aggregation ------------------------------------------------

def key_sort(pubkeys: Sequence[bytes]) -> list[bytes]:
    """BIP-327 KeySort (lexicographic on the 33-byte encodings), via libsecp."""
    if len(pubkeys) == 0:
        return []
    parsed = [parse_pubkey(pk, i) for i, pk in enumerate(pubkeys)]
    arr = ffi.new("secp256k1_pubkey *[]", parsed)
    if call(lib.secp256k1_ec_pubkey_sort, arr, len(parsed)) != 1:
        raise LibraryRefusal("secp256k1_ec_pubkey_sort failed")
    return [_serialize_pubkey(arr[i]) for i in range(len(parsed))]


class KeyAggContext:
    """An immutable key-aggregation cache (BIP-327 KeyGen Context).

    Tweaking returns a new object so that a context handed to a session can
    never change underneath it.  ``pubkeys`` keeps the order given: signer
    ``i`` of a session is ``pubkeys[i]`` (callers sort with :func:`key_sort`).
    """

    __slots__ = ("_cache", "pubkeys", "_internal_xonly", "tweaks", "_xonly")

    def __init__(self, _cache: bytes, pubkeys: tuple[bytes, ...], internal_xonly: bytes,
                 tweaks: tuple[tuple[bytes, bool], ...]):
        """Internal: use :meth:`from_pubkeys` and the ``with_*`` methods."""
        self._cache = _cache
        self.pubkeys = pubkeys
        self._internal_xonly = internal_xonly
        self.tweaks = tweaks
        self._xonly: bytes | None = None  # immutable object: computed once

    @classmethod
    def from_pubkeys(cls, pubkeys: Sequence[bytes]) -> "KeyAggContext":
        n = len(pubkeys)
        if n == 0:
            raise InvalidPublicKey(None, "at least one public key is required")
        if n > MAX_SIGNERS:
            raise CryptoError(f"at most {MAX_SIGNERS} signers per aggregation; got {n}")
        parsed = [parse_pubkey(pk, i) for i, pk in enumerate(pubkeys)]
        arr = ffi.new("secp256k1_pubkey *[]", parsed)
        cache = ffi.new("secp256k1_musig_keyagg_cache *")
        if call(lib.secp256k1_musig_pubkey_agg, ffi.NULL, cache, arr, n) != 1:
            # Only possible if the aggregate is the point at infinity.
            raise InvalidPublicKey(None, "key aggregation failed (aggregate key is infinity)")
        obj = cls(bytes(ffi.buffer(cache)), tuple(bytes(pk) for pk in pubkeys), b"", ())
        obj._internal_xonly = obj.xonly()
        return obj

    # The cffi struct is rebuilt from bytes per use: libsecp documents the
    # keyagg cache as plain data that may be copied, and this keeps us immutable.
    def _cache_ptr(self):
        cache = ffi.new("secp256k1_musig_keyagg_cache *")
        ffi.buffer(cache)[:] = self._cache
        return cache

    def _aggregate_point(self):
        pk = ffi.new("secp256k1_pubkey *")
        if call(lib.secp256k1_musig_pubkey_get, pk, self._cache_ptr()) != 1:
            raise LibraryRefusal("musig_pubkey_get failed")
        return pk

    def aggregate_pubkey(self) -> bytes:
        """The 33-byte aggregate key with every tweak applied so far."""
        return _serialize_pubkey(self._aggregate_point())

    def xonly(self) -> bytes:
        """The x-only aggregate key (tweaks applied): what the signature verifies under."""
        if self._xonly is None:
            self._xonly = _xonly_of(self._aggregate_point())
        return self._xonly

    def internal_xonly(self) -> bytes:
        """The x-only key the last taproot tweak was applied to.

        Without a taproot tweak this is the current x-only key; for a plain
        key-path output built by :meth:`with_taproot_tweak` on a fresh
        context it is the untweaked aggregate key (the BIP-341 internal key).
        """
        return self._internal_xonly

    def with_tweak(self, tweak: bytes, xonly: bool) -> "KeyAggContext":
        """Apply a plain (BIP-32 style) or x-only (BIP-341 style) tweak."""
        if not _is_bytes(tweak, 32):
            raise InvalidTweak("tweak must be 32 bytes")
        cache = self._cache_ptr()
        fn = lib.secp256k1_musig_pubkey_xonly_tweak_add if xonly else lib.secp256k1_musig_pubkey_ec_tweak_add
        if call(fn, ffi.NULL, cache, bytes(tweak)) != 1:
            raise InvalidTweak("tweak is not below the group order or makes the key infinity")
        new = KeyAggContext(bytes(ffi.buffer(cache)), self.pubkeys, b"",
                            self.tweaks + ((bytes(tweak), bool(xonly)),))
        # A generic tweak moves the "internal" key along with it; only
        # with_taproot_tweak (below) pins it to the pre-tweak key.
        new._internal_xonly = new.xonly()
        return new

    def with_taproot_tweak(self, merkle_root: bytes | None = None) -> "KeyAggContext":
        """BIP-341 output key ``Q = P + hash_TapTweak(x(P) [|| root])·G`` as an x-only tweak."""
        internal = self.xonly()
        if merkle_root is None:
            data = internal
        elif _is_bytes(merkle_root, 32):
            data = internal + bytes(merkle_root)
        else:
            raise InvalidTweak("taproot merkle root must be 32 bytes or None")
        new = self.with_tweak(tagged_hash("TapTweak", data), xonly=True)
        new._internal_xonly = internal
        return new

    def __repr__(self) -> str:
        return f"KeyAggContext(n={len(self.pubkeys)}, xonly={self.xonly().hex()}, tweaks={len(self.tweaks)})"


# --- nonces ---------------------------------------------------------------------

class SecretNonce:
    """A MuSig2 secret nonce: in memory only, usable for exactly one signature.

    WHY so strict: signing two different messages (or under two different
    aggregate nonces) with one secret nonce reveals the secret key.  So the
    object refuses copy, deepcopy, pickling and any byte export, and
    :meth:`SigningSession.partial_sign` marks it consumed before calling
    libsecp (which also zeroes the struct).  It also remembers its public
    nonce and public key so the signer can check its own partial signature.
    """

    __slots__ = ("_secnonce", "_consumed", "pubnonce", "pubkey", "_pubnonce_struct", "_lock",
                 "__weakref__")

    def __init__(self, _token: object = None):
        if _token is not _CONSTRUCT_TOKEN:
            raise CryptoError("secret nonces are only created by nonce_gen (no import from bytes)")
        # Check-and-mark must be atomic: cffi releases the GIL inside libsecp, and Electrum
        # calls into plugins from the GUI thread, the daemon's command threads and the loop.
        self._lock = threading.Lock()
        self._secnonce = ffi.new("secp256k1_musig_secnonce *")
        self._consumed = False
        self.pubnonce = b""
        self.pubkey = b""
        self._pubnonce_struct = None  # parsed public nonce, kept for the self-check

    @property
    def consumed(self) -> bool:
        return self._consumed

    def _take(self):
        """Hand the struct to one signing call, exactly once."""
        with self._lock:
            if self._consumed:
                raise NonceReuseError("this secret nonce was already used (or discarded); "
                                      "never reuse a nonce")
            self._consumed = True
            return self._secnonce

    def discard(self) -> None:
        """Zero and retire the nonce without signing (session aborted)."""
        with self._lock:
            self._consumed = True
            ffi.memmove(self._secnonce, b"\x00" * ffi.sizeof("secp256k1_musig_secnonce"),
                        ffi.sizeof("secp256k1_musig_secnonce"))

    def __copy__(self):
        raise NonceReuseError("secret nonces cannot be copied")

    def __deepcopy__(self, memo):
        raise NonceReuseError("secret nonces cannot be copied")

    def __reduce__(self):
        raise NonceReuseError("secret nonces cannot be pickled or serialised")

    def __reduce_ex__(self, protocol):
        raise NonceReuseError("secret nonces cannot be pickled or serialised")

    def __getstate__(self):
        raise NonceReuseError("secret nonces cannot be pickled or serialised")

    def __bytes__(self):
        raise NonceReuseError("secret nonces cannot be exported")

    def __del__(self):
        # Best effort: do not leave an unused nonce's secrets in freed memory.
        try:
            if not self._consumed:
                self.discard()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "consumed" if self._consumed else "fresh"
        return f"SecretNonce({state}, pubnonce={self.pubnonce.hex()[:16]}…)"


_CONSTRUCT_TOKEN = object()


def _nonce_gen_with_rand(session_rand: bytes, *, pubkey: bytes, seckey: bytes | None,
                         keyagg: KeyAggContext | None, msg: bytes | None,
                         extra_in: bytes | None) -> tuple[SecretNonce, bytes]:
    """nonce_gen with caller-chosen session randomness (vector tests only)."""
    pk = parse_pubkey(pubkey)
    # The secret key only strengthens the nonce's randomness (BIP-327); that it
    # belongs to ``pubkey`` is enforced where it matters, in partial_sign
    # (by us and by libsecp), so we skip a second point multiplication here.
    if seckey is not None:
        if not _is_bytes(seckey, 32):
            raise InvalidSecretKey("secret key must be 32 bytes")
        if call(lib.secp256k1_ec_seckey_verify, bytes(seckey)) != 1:
            raise InvalidSecretKey("secret key out of range")
    msg_arg = ffi.NULL if msg is None else _check_msg(msg)
    if extra_in is not None and not _is_bytes(extra_in, 32):
        raise CryptoError("extra_in must be 32 bytes (libsecp256k1 takes 32 bytes of extra input)")
    if not _is_bytes(session_rand, 32):
        raise CryptoError("session randomness must be 32 bytes")
    rand_buf = ffi.new("unsigned char[32]", bytes(session_rand))  # libsecp zeroes it after use
    nonce = SecretNonce(_CONSTRUCT_TOKEN)
    pubnonce = ffi.new("secp256k1_musig_pubnonce *")
    ok = call(lib.secp256k1_musig_nonce_gen, nonce._secnonce, pubnonce, rand_buf,
              ffi.NULL if seckey is None else bytes(seckey), pk, msg_arg,
              ffi.NULL if keyagg is None else keyagg._cache_ptr(),
              ffi.NULL if extra_in is None else bytes(extra_in))
    if ok != 1:
        raise LibraryRefusal("secp256k1_musig_nonce_gen failed")
    out = ffi.new("unsigned char[66]")
    call(lib.secp256k1_musig_pubnonce_serialize, out, pubnonce)
    nonce.pubnonce = bytes(ffi.buffer(out, 66))
    nonce._pubnonce_struct = pubnonce
    nonce.pubkey = bytes(pubkey)
    return nonce, nonce.pubnonce


def nonce_gen(*, pubkey: bytes, seckey: bytes | None = None, keyagg: KeyAggContext | None = None,
              msg: bytes | None = None, extra_in: bytes | None = None) -> tuple[SecretNonce, bytes]:
    """BIP-327 NonceGen: fresh 32 random bytes, strengthened by whatever else is known.

    The secret key, aggregate key and message are optional, but the BIP
    recommends passing them: they keep the nonce unique even if the OS RNG
    ever failed.  ``msg``, if given, must be 32 bytes.
    """
    return _nonce_gen_with_rand(os.urandom(32), pubkey=pubkey, seckey=seckey, keyagg=keyagg,
                                msg=msg, extra_in=extra_in)


def nonce_agg(pubnonces: Sequence[bytes]) -> bytes:
    """BIP-327 NonceAgg; an unparsable nonce raises InvalidPubNonce(index)."""
    n = len(pubnonces)
    if n == 0:
        raise InvalidPubNonce(None, "at least one public nonce is required")
    if n > MAX_SIGNERS:
        raise CryptoError(f"at most {MAX_SIGNERS} public nonces; got {n}")
    parsed = [parse_pubnonce(pn, i) for i, pn in enumerate(pubnonces)]
    arr = ffi.new("secp256k1_musig_pubnonce *[]", parsed)
    agg = ffi.new("secp256k1_musig_aggnonce *")
    if call(lib.secp256k1_musig_nonce_agg, agg, arr, n) != 1:
        raise LibraryRefusal("secp256k1_musig_nonce_agg failed")
    out = ffi.new("unsigned char[66]")
    call(lib.secp256k1_musig_aggnonce_serialize, out, agg)
    return bytes(ffi.buffer(out, 66))


# --- signing session ------------------------------------------------------------

class SigningSession:
    """One signing session: key set (with tweaks), aggregate nonce, 32-byte message.

    Construct it directly when the aggregate nonce came from a coordinator,
    or with :meth:`from_pubnonces` when you hold every signer's public nonce
    (then :meth:`aggregate` can blame a bad partial signature by index).
    """

    def __init__(self, keyagg: KeyAggContext, aggnonce: bytes, msg: bytes,
                 pubnonces: Sequence[bytes] | None = None, *, _aggnonce_from_pubnonces: bool = False):
        if not isinstance(keyagg, KeyAggContext):
            raise CryptoError("keyagg must be a KeyAggContext")
        self.keyagg = keyagg
        self.msg = _check_msg(msg)
        self.aggnonce = bytes(aggnonce) if isinstance(aggnonce, (bytes, bytearray)) else aggnonce
        agg = _parse_aggnonce(self.aggnonce)
        self.pubnonces: tuple[bytes, ...] | None = None
        if pubnonces is not None:
            if len(pubnonces) != len(keyagg.pubkeys):
                raise CryptoError("need exactly one public nonce per signer")
            # Reject a nonce set that does not match the aggregate nonce.
            if not _aggnonce_from_pubnonces and nonce_agg(pubnonces) != self.aggnonce:
                raise CryptoError("aggregate nonce does not match the public nonces")
            self.pubnonces = tuple(bytes(p) for p in pubnonces)
        self._cache = keyagg._cache_ptr()
        self._session = ffi.new("secp256k1_musig_session *")
        if call(lib.secp256k1_musig_nonce_process, self._session, agg, self.msg, self._cache) != 1:
            raise LibraryRefusal("secp256k1_musig_nonce_process failed")

    @classmethod
    def from_pubnonces(cls, keyagg: KeyAggContext, pubnonces: Sequence[bytes],
                       msg: bytes) -> "SigningSession":
        """Aggregate the signers' public nonces (blaming a bad one) and open the session."""
        return cls(keyagg, nonce_agg(pubnonces), msg, pubnonces, _aggnonce_from_pubnonces=True)

    def partial_sign(self, secnonce: SecretNonce, seckey: bytes) -> bytes:
        """Sign once with ``secnonce`` (consuming it) and check our own partial signature."""
        if not isinstance(secnonce, SecretNonce):
            raise CryptoError("secnonce must be a SecretNonce from nonce_gen")
        kp = keypair(seckey)
        own_pk_struct, own_pk = keypair_pub(kp)
        if own_pk not in self.keyagg.pubkeys:
            raise InvalidSecretKey("our public key is not one of the session's signers")
        if secnonce.pubkey != own_pk:
            secnonce._take()  # the nonce is spent either way; never leave it reusable
            raise InvalidSecretKey("secret nonce was generated for a different public key")
        raw = secnonce._take()  # raises NonceReuseError before libsecp sees a reused nonce
        psig = ffi.new("secp256k1_musig_partial_sig *")
        try:
            if call(lib.secp256k1_musig_partial_sign, psig, raw, kp, self._cache, self._session) != 1:
                raise LibraryRefusal("secp256k1_musig_partial_sign failed")
        finally:
            secnonce.discard()
        out = ffi.new("unsigned char[32]")
        call(lib.secp256k1_musig_partial_sig_serialize, out, psig)
        result = bytes(ffi.buffer(out, 32))
        # BIP-327 recommends this check: a fault during signing must not leak a
        # partial signature that could reveal the secret key.
        if not self._verify(psig, secnonce._pubnonce_struct, own_pk_struct):
            raise LibraryRefusal("our own partial signature does not verify (fault?); not released")
        return result

    def _verify(self, psig, pubnonce, pubkey) -> bool:
        return call(lib.secp256k1_musig_partial_sig_verify, psig, pubnonce, pubkey,
                    self._cache, self._session) == 1

    def partial_sig_verify(self, psig: bytes, pubnonce: bytes, signer_index: int) -> bool:
        """True iff ``psig`` is signer ``signer_index``'s valid partial signature.

        Malformed input raises the typed error naming ``signer_index``: an
        unparsable partial signature, public nonce or index out of range is a
        protocol violation, not merely "False".
        """
        if not isinstance(signer_index, int) or not 0 <= signer_index < len(self.keyagg.pubkeys):
            raise InvalidPartialSig(signer_index, "signer index out of range")
        p = parse_partial_sig(psig, signer_index)
        n = parse_pubnonce(pubnonce, signer_index)
        k = parse_pubkey(self.keyagg.pubkeys[signer_index], signer_index)
        return self._verify(p, n, k)

    def find_invalid(self, psigs: Sequence[bytes]) -> int | None:
        """Index of the first partial signature that fails verification, else None.

        Needs the public nonces (``from_pubnonces``): a partial signature is
        only attributable against the nonce its sender committed to.
        """
        if self.pubnonces is None:
            raise CryptoError("blame needs the signers' public nonces (use from_pubnonces)")
        for i, ps in enumerate(psigs):
            p = parse_partial_sig(ps, i)
            if not self._verify(p, parse_pubnonce(self.pubnonces[i], i),
                                parse_pubkey(self.keyagg.pubkeys[i], i)):
                return i
        return None

    def aggregate(self, psigs: Sequence[bytes]) -> bytes:
        """Combine partial signatures into a BIP-340 signature that verifies.

        Optimistic: aggregate, then verify the final signature once (one
        verification instead of n).  Only if it fails are the partial
        signatures checked one by one (against the public nonces, when the
        session has them) to raise InvalidPartialSig naming the culprit.  A
        valid final signature is the only thing that matters on chain, so
        nothing is lost by not checking the parts of a good whole.
        """
        n = len(self.keyagg.pubkeys)
        if len(psigs) != n:
            raise CryptoError(f"need exactly {n} partial signatures; got {len(psigs)}")
        parsed = [parse_partial_sig(ps, i) for i, ps in enumerate(psigs)]
        arr = ffi.new("secp256k1_musig_partial_sig *[]", parsed)
        sig = ffi.new("unsigned char[64]")
        if call(lib.secp256k1_musig_partial_sig_agg, sig, self._session, arr, n) != 1:
            raise LibraryRefusal("secp256k1_musig_partial_sig_agg failed")
        result = bytes(ffi.buffer(sig, 64))
        if schnorr_verify(self.keyagg.xonly(), self.msg, result):
            return result
        if self.pubnonces is not None:
            culprit = self.find_invalid(psigs)
            if culprit is not None:
                raise InvalidPartialSig(culprit, "partial signature does not verify")
        raise InvalidPartialSig(None, "aggregate signature does not verify; check each partial "
                                "signature with partial_sig_verify (session lacks the public nonces)")
