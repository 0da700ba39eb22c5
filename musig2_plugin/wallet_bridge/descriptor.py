"""``tr(musig(K1,...,Kn))`` descriptor text (BIP-380 / BIP-386 / BIP-390).

We write and read exactly two shapes: a key-path-only taproot output whose
internal key is the MuSig2 aggregate of n plain compressed keys, written in
BIP-327 KeySort order with the BIP-380 checksum, and the same with one
recovery leaf as its script tree (``tr(musig(...),and_v(...))``, see
recovery_tree.py). Being strict about the shape
is deliberate: this text is what users back up and paste, and anything we
accepted but did not fully understand (script trees, derivation steps, xpubs)
could make us show an address the keys cannot spend from.

The checksum is implemented here (not borrowed from Electrum) so the
descriptor is independent of the host; tests compare it with Electrum's.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from .errors import DescriptorError

_INPUT_CHARSET = ("0123456789()[],'/*abcdefgh@:$%{}"
                  "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
                  "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ")
_CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _polymod(c: int, val: int) -> int:
    top = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    for bit, gen in enumerate(_GENERATOR):
        if (top >> bit) & 1:
            c ^= gen
    return c


def descriptor_checksum(desc: str) -> str:
    """The 8-character BIP-380 checksum of a descriptor (text before any '#')."""
    c, cls, count = 1, 0, 0
    for ch in desc:
        pos = _INPUT_CHARSET.find(ch)
        if pos < 0:
            raise DescriptorError(f"character {ch!r} is not allowed in a descriptor")
        c = _polymod(c, pos & 31)
        cls = cls * 3 + (pos >> 5)
        count += 1
        if count == 3:
            c = _polymod(c, cls)
            cls, count = 0, 0
    if count:
        c = _polymod(c, cls)
    for _ in range(8):
        c = _polymod(c, 0)
    c ^= 1
    return "".join(_CHECKSUM_CHARSET[(c >> (5 * (7 - i))) & 31] for i in range(8))


def add_checksum(desc: str) -> str:
    return f"{desc}#{descriptor_checksum(desc)}"


def split_checksum(text: str, *, require: bool = False) -> str:
    """Strip and verify a '#checksum' suffix; return the bare descriptor."""
    body, sep, given = text.partition("#")
    if not sep:
        if require:
            raise DescriptorError("descriptor has no checksum")
        return body
    if given != descriptor_checksum(body):
        raise DescriptorError("descriptor checksum does not match")
    return body


def musig_descriptor(sorted_pubkeys: Sequence[bytes], tree: Optional[str] = None) -> str:
    """``tr(musig(...)[,TREE])#checksum`` for keys the caller already sorted (BIP-327 KeySort).

    ``tree`` is the script tree in miniscript (one recovery leaf, see recovery_tree.py).
    """
    keys = ",".join(bytes(k).hex() for k in sorted_pubkeys)
    return add_checksum(f"tr(musig({keys}),{tree})" if tree else f"tr(musig({keys}))")


_SHAPE = re.compile(r"tr\(musig\(([0-9a-fA-F,]+)\)(?:,([0-9a-z_:(),]+))?\)")


def parse_musig_descriptor(text: str) -> list[bytes]:
    """The participant keys of a key-path-only ``tr(musig(...))`` descriptor, in written order."""
    keys, tree = parse_musig_tree_descriptor(text)
    if tree is not None:
        raise DescriptorError("this descriptor has a script tree; a key-path-only "
                              "tr(musig(K1,...,Kn)) was expected")
    return keys


def parse_musig_tree_descriptor(text: str) -> tuple[list[bytes], Optional[str]]:
    """(participant keys in written order, TREE text or None) of ``tr(musig(...)[,TREE])``.

    Only plain 33-byte compressed hex keys are accepted; the caller validates that
    they are curve points (by aggregating them) and sorts, and parses the tree.
    """
    if not isinstance(text, str) or len(text) > 80 + 67 * 100:
        raise DescriptorError("descriptor must be a string of sane length")
    body = split_checksum(text.strip())
    m = _SHAPE.fullmatch(body)
    if not m:
        raise DescriptorError("only tr(musig(K1,...,Kn)) descriptors with hex keys, optionally "
                              "with one recovery leaf, are supported")
    keys = []
    for i, part in enumerate(m.group(1).split(",")):
        if len(part) != 66 or part[:2] not in ("02", "03"):
            raise DescriptorError(f"key {i} is not a 33-byte compressed public key")
        keys.append(bytes.fromhex(part))
    return keys, m.group(2)
