"""Taproot script-tree PSBT fields of MuSig2 inputs with a recovery leaf (BIP-371).

    0x14 PSBT_IN_TAP_SCRIPT_SIG        key: x(K) (32) | leaf hash (32)  value: 64/65-byte signature
    0x15 PSBT_IN_TAP_LEAF_SCRIPT       key: control block               value: script | leaf version
    0x16 PSBT_IN_TAP_BIP32_DERIVATION  key: x(K) (32)   value: <#leaf hashes> hashes fingerprint path
    0x18 PSBT_IN_TAP_MERKLE_ROOT       (Electrum parses it itself: ``txin.tap_merkle_root``)
    0x06 PSBT_OUT_TAP_TREE             key: -   value: {depth, leaf version, <script>}* (one leaf)

Why they are written: a wallet that knows nothing of our plugin (Bitcoin Core,
a hardware signer) needs the merkle root to sign or check the key path and the
leaf script + control block to sign the script path. Why they are all read
strictly: each peer forwards them to the others, and a co-signer that trusted
a leaf it did not check could approve a spend of an output it does not know.
The checks: lengths, one leaf only (our outputs have one), the leaf decompiles
to one of our policies over the input's participants, and merkle root, control
block and script all agree with the output recomputed from the keys.
"""
from __future__ import annotations

import hashlib
from typing import Optional

from ..foundation.constants import TAPSCRIPT_LEAF_VERSION
from .errors import PsbtFieldError, RecoveryPolicyError
from .recovery_tree import RecoveryPolicy

OUT_TAP_TREE = 0x06
IN_TAP_SCRIPT_SIG = 0x14
IN_TAP_LEAF_SCRIPT = 0x15
IN_TAP_BIP32_DERIVATION = 0x16
MAX_LEAF_ENTRIES = 1
MAX_DERIVATION_ENTRIES = 32
MAX_SCRIPT_SIGS = 32


def _entries(unknown, key_type: int) -> list[tuple[bytes, bytes]]:
    return [(k[1:], v) for k, v in unknown.items() if k[:1] == bytes([key_type])]


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def _derivation_value(leaf_hashes: list[bytes], fingerprint: bytes, path: tuple[int, ...]) -> bytes:
    return (bytes([len(leaf_hashes)]) + b"".join(leaf_hashes) + fingerprint
            + b"".join(i.to_bytes(4, "little") for i in path))


def set_input_tree(txin, out, input_index: Optional[int] = None,
                   own: Optional[tuple[bytes, bytes, tuple[int, ...]]] = None) -> None:
    """Write merkle root, leaf script and derivation fields of a recovery output's input.

    ``own`` = (our participant key, our keystore fingerprint, full path) adds the
    derivation of our own leaf key, as BIP-371 asks of the wallet that holds it.
    """
    policy = out.recovery
    if policy is None:
        return
    txin.tap_merkle_root = out.merkle_root
    u = txin._unknown
    u[bytes([IN_TAP_LEAF_SCRIPT]) + out.control_block()] = policy.script + bytes(
        [TAPSCRIPT_LEAF_VERSION])
    # The aggregate key is the root of its BIP-328 synthetic xpub: fingerprint of P, empty path.
    u[bytes([IN_TAP_BIP32_DERIVATION]) + out.internal_key[1:]] = _derivation_value(
        [], _hash160(out.internal_key)[:4], ())
    if own is not None:
        key, fingerprint, path = own
        if key in policy.signers:
            u[bytes([IN_TAP_BIP32_DERIVATION]) + key[1:]] = _derivation_value(
                [policy.leaf_hash], fingerprint, path)


def add_own_derivation(tx, key: bytes, fingerprint: bytes, path: tuple[int, ...]) -> None:
    """Our leaf key's origin (BIP-371 0x16 with the leaf hash) on every recovery input it signs.

    Hardware signers and other wallets find their key by it; it reveals nothing the
    descriptor does not, except which wallet node holds the key (ours: keystore/327h/0h).
    """
    if len(fingerprint) != 4 or len(path) > 32:
        raise PsbtFieldError(None, "bad key origin for our derivation field")
    from .psbt_fields import input_musig_output
    for i, txin in enumerate(tx.inputs()):
        out = input_musig_output(txin, i)
        if out is None or out.recovery is None or key not in out.recovery.signers:
            continue
        txin._unknown[bytes([IN_TAP_BIP32_DERIVATION]) + key[1:]] = _derivation_value(
            [out.recovery.leaf_hash], fingerprint, path)
    tx.invalidate_ser_cache()


def _check_derivations(txin, index) -> None:
    entries = _entries(txin._unknown, IN_TAP_BIP32_DERIVATION)
    if len(entries) > MAX_DERIVATION_ENTRIES:
        raise PsbtFieldError(index, "too many taproot key derivations")
    for key, value in entries:
        if len(key) != 32:
            raise PsbtFieldError(index, "taproot key derivation key must be a 32-byte x-only key")
        if not value or value[0] >= 0xFD:
            raise PsbtFieldError(index, "taproot key derivation has a bad leaf-hash count")
        rest = value[1 + 32 * value[0]:]
        if len(value) < 1 + 32 * value[0] or len(rest) < 4 or (len(rest) - 4) % 4:
            raise PsbtFieldError(index, "taproot key derivation has a bad length")


def read_input_policy(txin, participants: tuple[bytes, ...],
                      input_index: Optional[int] = None) -> Optional[RecoveryPolicy]:
    """The recovery leaf an input's fields describe (checked), or None for key-path-only inputs."""
    leaves = _entries(txin._unknown, IN_TAP_LEAF_SCRIPT)
    _check_derivations(txin, input_index)
    _check_script_sigs(txin, input_index)
    root = txin.tap_merkle_root
    if not leaves:
        if root is not None:
            raise PsbtFieldError(input_index, "a taproot merkle root without its leaf script: the "
                                        "script tree cannot be checked")
        return None
    if len(leaves) > MAX_LEAF_ENTRIES:
        raise PsbtFieldError(input_index,
                             "more than one taproot leaf script: not one of our outputs")
    control, value = leaves[0]
    if len(control) != 33 or (control[0] & 0xFE) != TAPSCRIPT_LEAF_VERSION:
        raise PsbtFieldError(input_index,
                             "the leaf's control block is not a one-leaf tapscript block")
    if len(value) < 2 or value[-1] != TAPSCRIPT_LEAF_VERSION:
        raise PsbtFieldError(input_index, "the leaf script does not end with the tapscript version")
    try:
        policy = RecoveryPolicy.from_script(value[:-1], participants)
    except RecoveryPolicyError as exc:
        raise PsbtFieldError(input_index, str(exc)) from exc
    if root is not None and (len(root) != 32 or root != policy.merkle_root):
        raise PsbtFieldError(input_index, "the taproot merkle root is not the leaf's hash")
    return policy


def check_control_block(txin, out, input_index: Optional[int] = None) -> None:
    """The written control block must be the one the recomputed output has."""
    leaves = _entries(txin._unknown, IN_TAP_LEAF_SCRIPT)
    if out.recovery is not None and leaves and leaves[0][0] != out.control_block():
        raise PsbtFieldError(input_index, "the leaf's control block does not match the output")


def _check_script_sigs(txin, index) -> None:
    entries = _entries(txin._unknown, IN_TAP_SCRIPT_SIG)
    if len(entries) > MAX_SCRIPT_SIGS:
        raise PsbtFieldError(index, "too many tapscript signatures")
    for key, value in entries:
        if len(key) != 64:
            raise PsbtFieldError(index, "tapscript signature key must be x(K) and a leaf hash")
        if len(value) != 64:
            # 65 bytes would carry a sighash type; we sign and accept SIGHASH_DEFAULT only.
            raise PsbtFieldError(index, "tapscript signature must be 64 bytes (SIGHASH_DEFAULT)")


def script_sigs(txin, leaf_hash: bytes, input_index: Optional[int] = None) -> dict[bytes, bytes]:
    """x-only key -> 64-byte tapscript signature for this leaf (checked shapes)."""
    _check_script_sigs(txin, input_index)
    return {k[:32]: v for k, v in _entries(txin._unknown, IN_TAP_SCRIPT_SIG)
            if k[32:] == leaf_hash}


def add_script_sig(txin, xonly: bytes, leaf_hash: bytes, sig: bytes,
                   input_index: Optional[int] = None) -> None:
    if len(xonly) != 32 or len(leaf_hash) != 32 or len(sig) != 64:
        raise PsbtFieldError(input_index, "a tapscript signature entry has a bad length")
    full = bytes([IN_TAP_SCRIPT_SIG]) + xonly + leaf_hash
    old = txin._unknown.get(full)
    if old is not None and old != sig:
        raise PsbtFieldError(input_index, "a different tapscript signature is already present")
    txin._unknown[full] = bytes(sig)


# --- outputs: the script tree of a recovery output we pay (change, or a new output) ----------
def set_output_tree(txout, out) -> None:
    """PSBT_OUT_TAP_TREE of a one-leaf recovery output: depth 0, tapscript, the leaf script."""
    if out.recovery is None:
        return
    script = out.recovery.script
    txout._unknown[bytes([OUT_TAP_TREE])] = (b"\x00" + bytes([TAPSCRIPT_LEAF_VERSION])
                                             + _compact(len(script)) + script)


def read_output_policy(txout, participants: tuple[bytes, ...],
                       output_index: Optional[int] = None) -> Optional[RecoveryPolicy]:
    """The recovery leaf of an output's PSBT_OUT_TAP_TREE (checked), or None without one."""
    entries = _entries(txout._unknown, OUT_TAP_TREE)
    if not entries:
        return None

    def bad(why):
        return PsbtFieldError(output_index, f"taproot tree {why}", section="output")
    key, value = entries[0]
    if len(entries) != 1 or key:
        raise bad("field has key data")
    if len(value) < 4 or value[0] != 0 or value[1] != TAPSCRIPT_LEAF_VERSION:
        raise bad("is not one depth-0 tapscript leaf")
    n, start = value[2], 3
    if n == 0xFD:
        if len(value) < 5:
            raise bad("has a bad length")
        n, start = int.from_bytes(value[3:5], "little"), 5
    elif n > 0xFD:
        raise bad("has a bad length")
    if len(value) != start + n:
        raise bad("is not exactly one leaf")
    try:
        return RecoveryPolicy.from_script(value[start:], participants)
    except RecoveryPolicyError as exc:
        raise PsbtFieldError(output_index, str(exc), section="output") from exc


def _compact(n: int) -> bytes:
    return bytes([n]) if n < 0xFD else b"\xfd" + n.to_bytes(2, "little")
