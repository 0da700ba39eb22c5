"""A secret nonce offered twice *concurrently* (two threads) is refused before libsecp.

Electrum calls plugins from the GUI thread, command threads and the network loop, and
cffi releases the GIL inside libsecp256k1: the one-shot check must be atomic. The race
is made deterministic with a trace hook that parks thread A between "is it consumed?"
and "mark it consumed" while thread B tries the same nonce (real libsecp, no mocks).
"""
from __future__ import annotations

import inspect
import os
import sys
import threading

from musig2_plugin.crypto import (KeyAggContext, NonceReuseError, SecretNonce, SigningSession,
                                  nonce_gen, plain_pubkey)


def _mark_line() -> int:
    lines, start = inspect.getsourcelines(SecretNonce._take)
    return start + next(i for i, line in enumerate(lines) if "self._consumed = True" in line)


def test_concurrent_second_use_is_refused_before_the_library():
    sks = [os.urandom(32) for _ in range(2)]
    pks = [plain_pubkey(sk) for sk in sks]
    keyagg = KeyAggContext.from_pubkeys(pks)
    msg = os.urandom(32)
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=keyagg, msg=msg) for pk, sk in zip(pks, sks)]
    session = SigningSession.from_pubnonces(keyagg, [pn for _, pn in nonces], msg)
    secnonce, sk = nonces[0][0], sks[0]

    code, line = SecretNonce._take.__code__, _mark_line()
    a_parked, b_done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def tracer(frame, event, _arg):
        if frame.f_code is not code:
            return None

        def local(frame, event, _arg):
            if event == "line" and frame.f_lineno == line:
                a_parked.set()
                b_done.wait(1.0)       # let B race us (B blocks here if the check is atomic)
            return local
        return local

    def run(name: str, trace: bool) -> None:
        if trace:
            sys.settrace(tracer)
        try:
            results[name] = session.partial_sign(secnonce, sk)
        except Exception as exc:  # recorded, asserted below
            results[name] = exc
        finally:
            sys.settrace(None)
            if name == "b":
                b_done.set()

    a = threading.Thread(target=run, args=("a", True))
    a.start()
    assert a_parked.wait(5)
    b = threading.Thread(target=run, args=("b", False))
    b.start()
    a.join(10)
    b.join(10)
    sigs = [r for r in results.values() if isinstance(r, bytes)]
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert len(sigs) == 1 and len(sigs[0]) == 32
    assert len(errors) == 1 and isinstance(errors[0], NonceReuseError), errors
    assert session.partial_sig_verify(sigs[0], nonces[0][1], 0)
