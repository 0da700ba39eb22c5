"""BIP-373 MuSig2 fields (and the BIP-371 internal key) on Electrum's PSBT objects.

Electrum 4.8 does not know these key types: its parser keeps them, byte for
byte, in the ``_unknown`` dict of each input/output section (full key =
compact-size type || key data) and writes them back sorted on serialization.
We read and write that dict, so our PSBTs stay ordinary Electrum PSBTs that
Bitcoin Core and hardware wallets can also read.

    input  0x17 PSBT_IN_TAP_INTERNAL_KEY            key: -            value: x(P)
    input  0x1a PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS   key: P (33)       value: K1..Kn (33 each, sorted)
    input  0x1b PSBT_IN_MUSIG2_PUB_NONCE             key: Ki (33) Q (33)  value: 66-byte public nonce
    input  0x1c PSBT_IN_MUSIG2_PARTIAL_SIG           key: Ki (33) Q (33)  value: 32-byte partial sig
    output 0x05 PSBT_OUT_TAP_INTERNAL_KEY           key: -            value: x(P)
    output 0x08 PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS  key: P (33)       value: K1..Kn

For a key-path spend the second key in 0x1b/0x1c is the taproot *output* key
Q with its parity byte and no leaf hash, as in BIP-373's "internal key is a
MuSig2 aggregate pubkey" test vectors (which our tests parse end to end).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import MutableMapping, Optional

from .. import crypto
from ..foundation.constants import MAX_OUTPUT_PARTICIPANTS, PARTIAL_SIG_LEN, PUBNONCE_LEN
from .errors import PsbtFieldError
from . import psbt_taptree
from .musig_output import MusigOutput

IN_TAP_INTERNAL_KEY = 0x17
IN_MUSIG2_PARTICIPANT_PUBKEYS = 0x1A
IN_MUSIG2_PUB_NONCE = 0x1B
IN_MUSIG2_PARTIAL_SIG = 0x1C
OUT_TAP_INTERNAL_KEY = 0x05
OUT_TAP_BIP32_DERIVATION = 0x07
OUT_MUSIG2_PARTICIPANT_PUBKEYS = 0x08



def _entries(unknown: MutableMapping[bytes, bytes], key_type: int) -> list[tuple[bytes, bytes]]:
    # All our key types are < 0xfd, so their compact-size encoding is one byte.
    return [(k[1:], v) for k, v in unknown.items() if k[:1] == bytes([key_type])]


def _is_compressed(b: bytes) -> bool:
    return len(b) == 33 and b[0] in (2, 3)


def _put(unknown: MutableMapping[bytes, bytes], key_type: int, key: bytes, value: bytes,
         index: Optional[int], what: str, section: str = "input") -> None:
    full = bytes([key_type]) + key
    old = unknown.get(full)
    if old is not None and old != value:
        raise PsbtFieldError(index, f"a different {what} is already present", section=section)
    unknown[full] = value


# --- participants ------------------------------------------------------------
def _set_participants(unknown, internal_type, participants_type, out: MusigOutput, index,
                      section):
    _put(unknown, internal_type, b"", out.internal_key[1:], index, "taproot internal key",
         section)
    _put(unknown, participants_type, out.internal_key, b"".join(out.participants), index,
         "participant key list", section)


def set_input_musig_info(txin, out: MusigOutput, input_index: Optional[int] = None) -> None:
    _set_participants(txin._unknown, IN_TAP_INTERNAL_KEY, IN_MUSIG2_PARTICIPANT_PUBKEYS, out,
                      input_index, "input")
    psbt_taptree.set_input_tree(txin, out, input_index)


def set_output_musig_info(txout, out: MusigOutput, output_index: Optional[int] = None) -> None:
    _set_participants(txout._unknown, OUT_TAP_INTERNAL_KEY, OUT_MUSIG2_PARTICIPANT_PUBKEYS, out,
                      output_index, "output")
    psbt_taptree.set_output_tree(txout, out)


def _read_participants(unknown, participants_type, index,
                       section) -> Optional[tuple[bytes, tuple[bytes, ...]]]:
    entries = _entries(unknown, participants_type)
    if not entries:
        return None
    if len(entries) != 1:
        raise PsbtFieldError(index, "more than one MuSig2 aggregate key: not supported",
                             section=section)
    agg, value = entries[0]
    if not _is_compressed(agg):
        raise PsbtFieldError(index, "MuSig2 aggregate key is not a 33-byte compressed key",
                             section=section)
    if not value or len(value) % 33 or len(value) // 33 > MAX_OUTPUT_PARTICIPANTS:
        raise PsbtFieldError(index, "MuSig2 participant list has a bad length", section=section)
    keys = tuple(value[i:i + 33] for i in range(0, len(value), 33))
    if not all(_is_compressed(k) for k in keys):
        raise PsbtFieldError(index, "a MuSig2 participant key is not a compressed key",
                             section=section)
    return agg, keys


def _read_internal_key(unknown, key_type, index, section) -> Optional[bytes]:
    """The 32-byte x-only taproot internal key field (input 0x17 / output 0x05), or None.

    Checked on read like every other field: no key data, exactly 32 bytes.
    """
    entries = _entries(unknown, key_type)
    if not entries:
        return None
    if len(entries) != 1 or entries[0][0]:
        raise PsbtFieldError(index, "taproot internal key field has key data", section=section)
    value = entries[0][1]
    if len(value) != 32:
        raise PsbtFieldError(index, "taproot internal key must be 32 bytes", section=section)
    return value


def read_input_internal_key(txin, input_index: Optional[int] = None) -> Optional[bytes]:
    return _read_internal_key(txin._unknown, IN_TAP_INTERNAL_KEY, input_index, "input")


def read_output_internal_key(txout, output_index: Optional[int] = None) -> Optional[bytes]:
    return _read_internal_key(txout._unknown, OUT_TAP_INTERNAL_KEY, output_index, "output")


def read_input_participants(txin, input_index: Optional[int] = None):
    """(aggregate key P, participant keys) of a MuSig2 input, or None for other inputs."""
    return _read_participants(txin._unknown, IN_MUSIG2_PARTICIPANT_PUBKEYS, input_index, "input")


def read_output_participants(txout, output_index: Optional[int] = None):
    return _read_participants(txout._unknown, OUT_MUSIG2_PARTICIPANT_PUBKEYS, output_index,
                              "output")


@functools.lru_cache(maxsize=64)
def _output_of(keys: tuple[bytes, ...], policy) -> MusigOutput:
    """MusigOutput.from_pubkeys, remembered: every input of a 50-input spend of one output
    (and every pass over the PSBT: review, sighashes, signing, finalizing) has the same keys
    and tree, and the result is a pure function of them (frozen, checked once)."""
    return MusigOutput.from_pubkeys(keys, recovery=policy)


def input_musig_output(txin, input_index: Optional[int] = None) -> Optional[MusigOutput]:
    """The MuSig2 output an input claims to spend, recomputed from its participant keys.

    The claim is checked: the recomputed aggregate must equal the field's key, and
    its taproot output script must be the script the input actually spends.
    """
    got = read_input_participants(txin, input_index)
    if got is None:
        return None
    agg, keys = got
    policy = psbt_taptree.read_input_policy(txin, keys, input_index)
    out = _output_of(keys, policy)
    psbt_taptree.check_control_block(txin, out, input_index)
    if out.participants != keys:
        raise PsbtFieldError(input_index, "MuSig2 participant keys are not in KeySort order")
    if out.internal_key != agg:
        raise PsbtFieldError(input_index, "participant keys do not aggregate to the field's key")
    internal = read_input_internal_key(txin, input_index)
    if internal is not None and internal != out.internal_key[1:]:
        # Other wallets sign and derive from 0x17: a value that disagrees with the
        # participants would make them see a different output than we do.
        raise PsbtFieldError(input_index, "taproot internal key is not the MuSig2 aggregate key")
    return out


# --- outputs: plain and BIP-328-derived MuSig2 outputs ------------------------------
MAX_DERIVATION_DEPTH = 32        # BIP-32 allows 255; real paths are a handful of steps
MAX_TAP_LEAF_HASHES = 64         # bounds the 0x07 value a peer can make us parse


@dataclass(frozen=True)
class OutputMusigInfo:
    """What an output's BIP-373 fields prove about it.

    ``output`` is the plain ``tr(musig(...))`` of the participants; ``path`` is the
    BIP-328 derivation (empty for the aggregate itself) that leads from the
    aggregate key to the output's taproot internal key.
    """
    output: MusigOutput
    path: tuple[int, ...] = ()


def _parse_tap_derivation(value: bytes, index, section) -> tuple[bytes, tuple[int, ...]]:
    """(fingerprint, path) of a PSBT_{IN,OUT}_TAP_BIP32_DERIVATION value (leaf hashes skipped)."""
    def bad(why):
        return PsbtFieldError(index, f"taproot key derivation {why}", section=section)
    if not value:
        raise bad("is empty")
    n = value[0]
    if n >= 0xFD or n > MAX_TAP_LEAF_HASHES:
        raise bad("lists too many leaf hashes")
    rest = value[1 + 32 * n:]
    if len(value) < 1 + 32 * n or len(rest) < 4 or (len(rest) - 4) % 4:
        raise bad("has a bad length")
    path = tuple(int.from_bytes(rest[i:i + 4], "little") for i in range(4, len(rest), 4))
    if len(path) > MAX_DERIVATION_DEPTH:
        raise bad("is too deep")
    return rest[:4], path


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def output_musig_info(txout, output_index: Optional[int] = None) -> Optional[OutputMusigInfo]:
    """Check an output's BIP-373 fields against its script; None if it has none.

    Two shapes are valid: the script is the key-path taproot output of the plain
    aggregate (our own outputs and change), or the output's internal key (0x05)
    is derived from the aggregate by BIP-328, proven by a taproot derivation
    entry (0x07) whose fingerprint is the aggregate's and whose path leads to it
    (what Bitcoin Core writes for ``tr(musig(...)/path)``). Anything else is a
    claim we cannot check and is refused, naming the output.
    """
    from electrum.bitcoin import taproot_output_script
    got = read_output_participants(txout, output_index)
    if got is None:
        return None
    agg, keys = got

    def refuse(why):
        return PsbtFieldError(output_index, why, section="output")
    out = MusigOutput.from_pubkeys(keys)
    if out.participants != keys or out.internal_key != agg:
        raise refuse("output participant keys do not aggregate to the field's key")
    internal = read_output_internal_key(txout, output_index)
    policy = psbt_taptree.read_output_policy(txout, keys, output_index)
    if policy is not None:
        # A recovery output (our change, or a new one): the tree must produce the script.
        out = MusigOutput.from_pubkeys(keys, recovery=policy)
        if out.scriptpubkey != txout.scriptpubkey or internal not in (None, agg[1:]):
            raise refuse("output participant keys and taproot tree do not produce its script")
        return OutputMusigInfo(out)
    if out.scriptpubkey == txout.scriptpubkey and internal in (None, agg[1:]):
        return OutputMusigInfo(out)
    if internal is None:
        raise refuse("output participant keys do not produce its script")
    if taproot_output_script(internal, script_tree=None) != txout.scriptpubkey:
        raise refuse("the output's taproot internal key does not produce its script")
    for key, value in _entries(txout._unknown, OUT_TAP_BIP32_DERIVATION):
        if len(key) != 32:
            raise refuse("taproot key derivation key data must be a 32-byte x-only key")
        fingerprint, path = _parse_tap_derivation(value, output_index, "output")
        if key != internal or fingerprint != _hash160(agg)[:4]:
            continue
        try:
            derived = crypto.bip328_derive(list(keys), path).aggregate_pubkey()
        except crypto.CryptoError as exc:
            raise refuse(f"BIP-328 derivation of the output key failed: {exc}") from exc
        if derived[1:] != internal:
            raise refuse("the BIP-328 derivation does not lead to the output's internal key")
        return OutputMusigInfo(out, path)
    raise refuse("output participant keys do not produce its script, and no BIP-328 "
                 "derivation from their aggregate proves the output key")


# --- nonces and partial signatures ---------------------------------------------
def _session_put(txin, key_type, participant, output_key, value, size, index, what):
    if not (_is_compressed(participant) and _is_compressed(output_key)):
        raise PsbtFieldError(index, f"{what} key data must be two compressed keys")
    if len(value) != size:
        raise PsbtFieldError(index, f"{what} must be {size} bytes")
    _put(txin._unknown, key_type, participant + output_key, bytes(value), index, what)


def _session_read(txin, key_type, output_key, size, index, what) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for key, value in _entries(txin._unknown, key_type):
        # Every entry is checked before we decide whether it is ours: an entry we
        # skip is still forwarded to the other signers and wallets in this PSBT.
        if len(key) not in (66, 98):
            raise PsbtFieldError(index, f"{what} key data has a bad length")
        participant, agg = key[:33], key[33:66]
        if not _is_compressed(participant):
            raise PsbtFieldError(index, f"{what} participant key is not compressed")
        if not _is_compressed(agg):
            raise PsbtFieldError(index, f"{what} aggregate key is not compressed")
        if len(value) != size:
            raise PsbtFieldError(index, f"{what} must be {size} bytes")
        if len(key) == 98 or agg != output_key:
            continue   # a script-path (tapleaf) session or another aggregate key: not ours
        found[participant] = value
    return found


def add_pubnonce(txin, participant: bytes, output_key: bytes, pubnonce: bytes,
                 input_index: Optional[int] = None) -> None:
    _session_put(txin, IN_MUSIG2_PUB_NONCE, participant, output_key, pubnonce, PUBNONCE_LEN,
                 input_index, "public nonce")


def pubnonces(txin, output_key: bytes, input_index: Optional[int] = None) -> dict[bytes, bytes]:
    return _session_read(txin, IN_MUSIG2_PUB_NONCE, output_key, PUBNONCE_LEN, input_index,
                         "public nonce")


def add_partial_sig(txin, participant: bytes, output_key: bytes, psig: bytes,
                    input_index: Optional[int] = None) -> None:
    _session_put(txin, IN_MUSIG2_PARTIAL_SIG, participant, output_key, psig, PARTIAL_SIG_LEN,
                 input_index, "partial signature")


def partial_sigs(txin, output_key: bytes, input_index: Optional[int] = None) -> dict[bytes, bytes]:
    return _session_read(txin, IN_MUSIG2_PARTIAL_SIG, output_key, PARTIAL_SIG_LEN, input_index,
                         "partial signature")


def clear_session_fields(txin) -> None:
    """Drop nonces and partial signatures (a restarted session must not reuse them)."""
    for k in [k for k in txin._unknown if k[:1] in (bytes([IN_MUSIG2_PUB_NONCE]),
                                                   bytes([IN_MUSIG2_PARTIAL_SIG]))]:
        del txin._unknown[k]
