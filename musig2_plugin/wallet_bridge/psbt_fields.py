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

from typing import MutableMapping, Optional

from ..foundation.constants import MAX_OUTPUT_PARTICIPANTS, PARTIAL_SIG_LEN, PUBNONCE_LEN
from .errors import PsbtFieldError
from .musig_output import MusigOutput

IN_TAP_INTERNAL_KEY = 0x17
IN_MUSIG2_PARTICIPANT_PUBKEYS = 0x1A
IN_MUSIG2_PUB_NONCE = 0x1B
IN_MUSIG2_PARTIAL_SIG = 0x1C
OUT_TAP_INTERNAL_KEY = 0x05
OUT_MUSIG2_PARTICIPANT_PUBKEYS = 0x08



def _entries(unknown: MutableMapping[bytes, bytes], key_type: int) -> list[tuple[bytes, bytes]]:
    # All our key types are < 0xfd, so their compact-size encoding is one byte.
    return [(k[1:], v) for k, v in unknown.items() if k[:1] == bytes([key_type])]


def _is_compressed(b: bytes) -> bool:
    return len(b) == 33 and b[0] in (2, 3)


def _put(unknown: MutableMapping[bytes, bytes], key_type: int, key: bytes, value: bytes,
         index: Optional[int], what: str) -> None:
    full = bytes([key_type]) + key
    old = unknown.get(full)
    if old is not None and old != value:
        raise PsbtFieldError(index, f"a different {what} is already present")
    unknown[full] = value


# --- participants ------------------------------------------------------------
def _set_participants(unknown, internal_type, participants_type, out: MusigOutput, index):
    _put(unknown, internal_type, b"", out.internal_key[1:], index, "taproot internal key")
    _put(unknown, participants_type, out.internal_key, b"".join(out.participants), index,
         "participant key list")


def set_input_musig_info(txin, out: MusigOutput, index: Optional[int] = None) -> None:
    _set_participants(txin._unknown, IN_TAP_INTERNAL_KEY, IN_MUSIG2_PARTICIPANT_PUBKEYS, out, index)


def set_output_musig_info(txout, out: MusigOutput, index: Optional[int] = None) -> None:
    _set_participants(txout._unknown, OUT_TAP_INTERNAL_KEY, OUT_MUSIG2_PARTICIPANT_PUBKEYS, out,
                      index)


def _read_participants(unknown, participants_type, index) -> Optional[tuple[bytes, tuple[bytes, ...]]]:
    entries = _entries(unknown, participants_type)
    if not entries:
        return None
    if len(entries) != 1:
        raise PsbtFieldError(index, "more than one MuSig2 aggregate key: not supported")
    agg, value = entries[0]
    if not _is_compressed(agg):
        raise PsbtFieldError(index, "MuSig2 aggregate key is not a 33-byte compressed key")
    if not value or len(value) % 33 or len(value) // 33 > MAX_OUTPUT_PARTICIPANTS:
        raise PsbtFieldError(index, "MuSig2 participant list has a bad length")
    keys = tuple(value[i:i + 33] for i in range(0, len(value), 33))
    if not all(_is_compressed(k) for k in keys):
        raise PsbtFieldError(index, "a MuSig2 participant key is not a compressed key")
    return agg, keys


def read_input_participants(txin, index: Optional[int] = None):
    """(aggregate key P, participant keys) of a MuSig2 input, or None for other inputs."""
    return _read_participants(txin._unknown, IN_MUSIG2_PARTICIPANT_PUBKEYS, index)


def read_output_participants(txout, index: Optional[int] = None):
    return _read_participants(txout._unknown, OUT_MUSIG2_PARTICIPANT_PUBKEYS, index)


def input_musig_output(txin, index: Optional[int] = None) -> Optional[MusigOutput]:
    """The MuSig2 output an input claims to spend, recomputed from its participant keys.

    The claim is checked: the recomputed aggregate must equal the field's key, and
    its taproot output script must be the script the input actually spends.
    """
    got = read_input_participants(txin, index)
    if got is None:
        return None
    agg, keys = got
    out = MusigOutput.from_pubkeys(keys)
    if out.participants != keys:
        raise PsbtFieldError(index, "MuSig2 participant keys are not in KeySort order")
    if out.internal_key != agg:
        raise PsbtFieldError(index, "participant keys do not aggregate to the field's key")
    return out


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
        if len(key) not in (66, 98):
            raise PsbtFieldError(index, f"{what} key data has a bad length")
        if len(key) == 98:
            continue   # a script-path (tapleaf) session: not ours, leave it alone
        participant, agg = key[:33], key[33:66]
        if agg != output_key:
            continue
        if not _is_compressed(participant):
            raise PsbtFieldError(index, f"{what} participant key is not compressed")
        if len(value) != size:
            raise PsbtFieldError(index, f"{what} must be {size} bytes")
        found[participant] = value
    return found


def add_pubnonce(txin, participant: bytes, output_key: bytes, pubnonce: bytes,
                 index: Optional[int] = None) -> None:
    _session_put(txin, IN_MUSIG2_PUB_NONCE, participant, output_key, pubnonce, PUBNONCE_LEN,
                 index, "public nonce")


def pubnonces(txin, output_key: bytes, index: Optional[int] = None) -> dict[bytes, bytes]:
    return _session_read(txin, IN_MUSIG2_PUB_NONCE, output_key, PUBNONCE_LEN, index,
                         "public nonce")


def add_partial_sig(txin, participant: bytes, output_key: bytes, psig: bytes,
                    index: Optional[int] = None) -> None:
    _session_put(txin, IN_MUSIG2_PARTIAL_SIG, participant, output_key, psig, PARTIAL_SIG_LEN,
                 index, "partial signature")


def partial_sigs(txin, output_key: bytes, index: Optional[int] = None) -> dict[bytes, bytes]:
    return _session_read(txin, IN_MUSIG2_PARTIAL_SIG, output_key, PARTIAL_SIG_LEN, index,
                         "partial signature")


def clear_session_fields(txin) -> None:
    """Drop nonces and partial signatures (a restarted session must not reuse them)."""
    for k in [k for k in txin._unknown if k[:1] in (bytes([IN_MUSIG2_PUB_NONCE]),
                                                   bytes([IN_MUSIG2_PARTIAL_SIG]))]:
        del txin._unknown[k]
