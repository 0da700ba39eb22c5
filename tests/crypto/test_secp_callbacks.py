"""The non-aborting context: misuse raises instead of killing the process.

These run in a subprocess on purpose: if a callback were missing, libsecp256k1
would abort() and take the test runner with it.  The last test shows that the
danger is real by running the same call on a context *without* our callbacks.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from musig2_plugin.crypto import LibraryRefusal
from musig2_plugin.crypto.secp import call, ffi, last_refusal, lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_REUSE_SCRIPT = textwrap.dedent("""
    import os
    from musig2_plugin.crypto import (KeyAggContext, LibraryRefusal, NonceReuseError,
                                      SigningSession, nonce_gen, plain_pubkey)
    from musig2_plugin.crypto.secp import call, ffi, lib

    sks = [os.urandom(32) for _ in range(2)]
    pks = [plain_pubkey(sk) for sk in sks]
    keyagg = KeyAggContext.from_pubkeys(pks)
    msg = os.urandom(32)
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg) for pk, sk in zip(pks, sks)]
    session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    session.partial_sign(nonces[0][0], sks[0])
    try:
        session.partial_sign(nonces[0][0], sks[0])
    except NonceReuseError:
        print("one-shot object refused")
    # Bypass the one-shot object: hand libsecp the (zeroed) spent secnonce directly.
    kp = ffi.new("secp256k1_keypair *")
    call(lib.secp256k1_keypair_create, kp, sks[0])
    psig = ffi.new("secp256k1_musig_partial_sig *")
    try:
        call(lib.secp256k1_musig_partial_sign, psig, nonces[0][0]._secnonce, kp,
             session._cache, session._session)
    except LibraryRefusal as exc:
        print("library refused:", exc)
    print("still alive")
""")


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_reused_secnonce_raises_and_process_survives():
    proc = _run(_REUSE_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "one-shot object refused"
    assert lines[1].startswith("library refused:") and "secnonce" in lines[1]
    assert lines[-1] == "still alive"


def test_default_context_would_abort_the_process():
    """Control experiment: the same zeroed-secnonce call on a context with libsecp's
    default callbacks kills the interpreter with SIGABRT. This is why secp.py exists."""
    script = textwrap.dedent("""
        from coincurve._libsecp256k1 import ffi, lib
        ctx = lib.secp256k1_context_create(lib.SECP256K1_CONTEXT_NONE)
        kp = ffi.new("secp256k1_keypair *")
        assert lib.secp256k1_keypair_create(ctx, kp, b"\\x01" * 32) == 1
        lib.secp256k1_musig_partial_sign(ctx, ffi.new("secp256k1_musig_partial_sig *"),
            ffi.new("secp256k1_musig_secnonce *"), kp,
            ffi.new("secp256k1_musig_keyagg_cache *"), ffi.new("secp256k1_musig_session *"))
        print("survived")
    """)
    proc = _run(script)
    assert proc.returncode == -signal.SIGABRT
    assert "survived" not in proc.stdout
    assert "illegal argument" in proc.stderr


def test_illegal_argument_in_process_becomes_library_refusal():
    kp = ffi.new("secp256k1_keypair *")
    assert call(lib.secp256k1_keypair_create, kp, b"\x02" * 32) == 1
    with pytest.raises(LibraryRefusal, match="secnonce"):
        call(lib.secp256k1_musig_partial_sign, ffi.new("secp256k1_musig_partial_sig *"),
             ffi.new("secp256k1_musig_secnonce *"), kp,
             ffi.new("secp256k1_musig_keyagg_cache *"), ffi.new("secp256k1_musig_session *"))
    # The refusal is cleared once raised: the next good call goes through.
    assert call(lib.secp256k1_keypair_create, kp, b"\x03" * 32) == 1
    assert last_refusal() is None
