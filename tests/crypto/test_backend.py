"""The two crypto backends: which one runs, that they agree byte for byte, and what happens
when the library lacks the MuSig2 module.

scripts/run-tests runs the whole of tests/crypto once per backend (MUSIG2_CRYPTO_BACKEND);
these tests check that the variable really selects the backend, and compare both backends'
deterministic outputs in child processes (the backend is fixed at import).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musig2_plugin.crypto import (CryptoError, InvalidPublicKey, InvalidSecretKey, plain_pubkey,
                                  secp)
from musig2_plugin.crypto import backend as crypto_backend
from musig2_plugin.crypto._ctypes_lib import MUSIG_FUNCTIONS, CtypesFFI, load
from musig2_plugin.crypto.ecdh import ecdh, new_secret_key
from musig2_plugin.crypto.errors import CryptoUnavailable
from tests.harness.bundle import NOMUSIG_LIB, require_bundle_env, shadow_electrum_ecc_without_musig

REPO = Path(__file__).resolve().parents[2]


def _child(code: str, backend: str, extra_path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUSIG2_CRYPTO_BACKEND=backend)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(REPO)) if p)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_the_requested_backend_is_the_one_running():
    wanted = os.environ.get(crypto_backend.ENV_BACKEND, "").strip()
    assert crypto_backend.PROBLEM is None
    assert secp.BACKEND == (wanted or "coincurve")  # coincurve first where it is installed


FINGERPRINT = r"""
import json, sys
from musig2_plugin.crypto import (KeyAggContext, SigningSession, bip328_xpub, key_sort,
                                  nonce_agg, plain_pubkey, schnorr_sign, secp)
from musig2_plugin.crypto.ecdh import ecdh
from musig2_plugin.crypto.musig import _nonce_gen_with_rand
sks = [bytes([i + 1]) * 32 for i in range(5)]
pks = key_sort([plain_pubkey(sk) for sk in sks])
by_pk = {plain_pubkey(sk): sk for sk in sks}
ka = KeyAggContext.from_pubkeys(pks).with_taproot_tweak(bytes(range(32)))
msg = bytes(range(32, 64))
nonces = [_nonce_gen_with_rand(bytes([9 + i]) * 32, pubkey=pk, seckey=by_pk[pk], keyagg=ka,
                               msg=msg, extra_in=None) for i, pk in enumerate(pks)]
session = SigningSession.from_pubnonces(ka, [pn for _, pn in nonces], msg)
psigs = [session.partial_sign(sn, by_pk[pk]) for (sn, _), pk in zip(nonces, pks)]
print(json.dumps({
    "backend": secp.BACKEND,
    "keys": [pk.hex() for pk in pks],
    "xonly": ka.xonly().hex(),
    "xpub": bip328_xpub(pks, [0, 7]),
    "aggnonce": session.aggnonce.hex(),
    "psigs": [p.hex() for p in psigs],
    "sig": session.aggregate(psigs).hex(),
    "bip340": schnorr_sign(sks[0], msg, bytes(32)).hex(),
    "ecdh": ecdh(sks[1], plain_pubkey(sks[2])).hex(),
}))
"""


def test_both_backends_give_identical_results():
    """Same keys, fixed nonce randomness: every output identical, byte for byte."""
    outs = {}
    for name in crypto_backend.BACKENDS:
        res = _child(FINGERPRINT, name)
        assert res.returncode == 0, res.stderr[-2000:]
        outs[name] = json.loads(res.stdout.strip().splitlines()[-1])
        assert outs[name].pop("backend") == name
    assert outs["coincurve"] == outs["electrum_ecc"]


def test_ctypes_backend_uses_electrums_loaded_library_and_not_coincurve():
    code = r"""
import sys
from electrum_ecc import ecc_fast
from musig2_plugin.crypto import backend, KeyAggContext, plain_pubkey
KeyAggContext.from_pubkeys([plain_pubkey(b"\x01" * 32), plain_pubkey(b"\x02" * 32)])
assert backend.NAME == "electrum_ecc", backend.NAME
assert backend.PATH == ecc_fast._libsecp256k1._name, (backend.PATH, ecc_fast._libsecp256k1._name)
# The loader hands back the mapping electrum_ecc already has: one library in the process.
assert backend.lib._cdll._handle == ecc_fast._libsecp256k1._handle
assert not any(m == "coincurve" or m.startswith("coincurve.") for m in sys.modules), "coincurve used"
print("ok")
"""
    res = _child(code, "electrum_ecc")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_ecdh_matches_coincurve_and_refuses_bad_input():
    from coincurve import PrivateKey  # the independent implementation (development env only)
    for _ in range(5):
        a, b = new_secret_key(), new_secret_key()
        assert ecdh(a, plain_pubkey(b)) == PrivateKey(a).ecdh(plain_pubkey(b))
        assert ecdh(a, plain_pubkey(b)) == ecdh(b, plain_pubkey(a))
    sk = new_secret_key()
    with pytest.raises(InvalidPublicKey):
        ecdh(sk, b"\x02" + b"\xff" * 32)          # x >= p: not a point
    with pytest.raises(InvalidPublicKey):
        ecdh(sk, plain_pubkey(sk)[1:])            # 32 bytes
    order = bytes.fromhex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
    for bad in (bytes(32), order, b"\x01" * 31):
        with pytest.raises(InvalidSecretKey):
            ecdh(bad, plain_pubkey(sk))


def test_ctypes_ffi_refuses_types_it_does_not_know():
    ffi = CtypesFFI()
    with pytest.raises(TypeError):
        ffi.new("secp256k1_unknown *")
    with pytest.raises(TypeError):
        ffi.sizeof("struct nothing")
    buf = ffi.new("unsigned char[4]", b"\x01\x02\x03\x04")
    assert bytes(ffi.buffer(buf, 2)) == b"\x01\x02"
    with pytest.raises(IndexError):
        ffi.new("unsigned char[4]", b"\x00" * 5)      # never written past the buffer


UNKNOWN_CHILD = r"""
import json
from musig2_plugin.crypto import backend, plain_pubkey
from musig2_plugin.crypto.errors import CryptoUnavailable
try:
    plain_pubkey(b"\x01" * 32)
    ran = "ran"
except CryptoUnavailable as exc:
    ran = str(exc)
print(json.dumps({"name": backend.NAME, "problem": backend.PROBLEM, "ran": ran}))
"""


@pytest.mark.parametrize("choice", ["coincurv", "ctypes"])
def test_a_mistyped_backend_choice_runs_nothing_and_says_why(choice):
    res = _child(UNKNOWN_CHILD, choice)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["name"] == "none"
    assert f"MUSIG2_CRYPTO_BACKEND='{choice}' is not one of coincurve, electrum_ecc" in out["problem"]
    assert out["ran"] == out["problem"]


def test_a_library_without_musig_is_reported_not_crashed():
    """The real libsecp256k1 built without --enable-module-musig (bootstrap step 40)."""
    require_bundle_env()
    lib, missing_base, missing_musig, path = load(str(NOMUSIG_LIB))
    assert missing_base == []                       # everything else is there
    assert sorted(missing_musig) == sorted(MUSIG_FUNCTIONS)
    assert path == str(NOMUSIG_LIB)


NO_MUSIG_CHILD = r"""
import json
from musig2_plugin.crypto import (KeyAggContext, backend, plain_pubkey, schnorr_sign,
                                  schnorr_verify, xonly_pubkey)
from musig2_plugin.crypto.errors import CryptoUnavailable
out = {"problem": backend.PROBLEM, "name": backend.NAME}
sk = b"\x05" * 32
# BIP-340 and ECDH do not need the MuSig2 module: still fine on this library.
out["bip340"] = schnorr_verify(xonly_pubkey(sk), b"m" * 32, schnorr_sign(sk, b"m" * 32))
try:
    KeyAggContext.from_pubkeys([plain_pubkey(sk)])
    out["musig"] = "ran"
except CryptoUnavailable as exc:
    out["musig"] = str(exc)
try:
    backend.require_musig()
    out["require"] = "passed"
except CryptoUnavailable as exc:
    out["require"] = str(exc)
print(json.dumps(out))
"""


def test_electrum_ecc_without_musig_gives_one_line(tmp_path):
    """electrum_ecc carrying a libsecp256k1 without MuSig2: the crypto layer imports, says so
    in one line, refuses every MuSig2 call with that line, and keeps BIP-340 working."""
    require_bundle_env()
    shadow = shadow_electrum_ecc_without_musig(tmp_path / "shadow", Path(sys.executable))
    res = _child(NO_MUSIG_CHILD, "electrum_ecc", extra_path=str(shadow))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    line = out["problem"]
    assert out["name"] == "electrum_ecc" and "\n" not in line
    assert "lacks the MuSig2 module" in line and "node will not start" in line
    assert out["musig"] == line and out["require"] == line
    assert out["bip340"] is True


def test_unavailable_is_a_crypto_error():
    assert issubclass(CryptoUnavailable, CryptoError)


def _bundle_child(code: str, backend: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(REPO)}
    if backend is not None:
        env["MUSIG2_CRYPTO_BACKEND"] = backend
    return subprocess.run([str(require_bundle_env()), "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd="/")


def test_in_the_bundle_env_the_fallback_is_chosen_and_agrees_byte_for_byte():
    """No coincurve there: the default choice is electrum_ecc, with the same outputs as the
    development environment's coincurve backend."""
    there = _bundle_child(FINGERPRINT, None)
    assert there.returncode == 0, there.stderr[-2000:]
    here = _child(FINGERPRINT, "coincurve")
    assert here.returncode == 0, here.stderr[-2000:]
    a = json.loads(there.stdout.strip().splitlines()[-1])
    b = json.loads(here.stdout.strip().splitlines()[-1])
    assert a.pop("backend") == "electrum_ecc" and b.pop("backend") == "coincurve"
    assert a == b


def test_forcing_an_absent_backend_says_which_and_why():
    res = _bundle_child(UNKNOWN_CHILD, "coincurve")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["name"] == "none"
    assert "no libsecp256k1 found (coincurve: ModuleNotFoundError" in out["problem"]
    assert "\n" not in out["problem"] and out["ran"] == out["problem"]


def test_secret_nonce_memory_is_zeroed_after_use_and_discard():
    """On whichever backend runs: the secnonce struct's bytes are zero once signed or discarded."""
    from musig2_plugin.crypto import KeyAggContext, SigningSession, nonce_gen
    from musig2_plugin.crypto.secp import ffi
    sks = [bytes([7 + i]) * 32 for i in range(2)]
    pks = [plain_pubkey(sk) for sk in sks]
    ka = KeyAggContext.from_pubkeys(pks)
    msg = b"\x42" * 32
    nonces = [nonce_gen(pubkey=pk, seckey=sk, keyagg=ka, msg=msg) for pk, sk in zip(pks, sks)]
    size = ffi.sizeof("secp256k1_musig_secnonce")

    def raw(n):
        return bytes(ffi.buffer(n._secnonce, size))

    assert all(any(raw(sn)) for sn, _ in nonces)            # fresh: secret material present
    session = SigningSession.from_pubnonces(ka, [pn for _, pn in nonces], msg)
    session.partial_sign(nonces[0][0], sks[0])
    assert raw(nonces[0][0]) == bytes(size)                  # used: zeroed
    nonces[1][0].discard()
    assert raw(nonces[1][0]) == bytes(size)                  # discarded: zeroed
