"""Primitive readers/writers of the canonical record encoding.

Fixed-width big-endian integers and length-prefixed byte strings only: with no
optional widths or varints there is exactly one byte form per value, which is
what makes the encoding canonical (same record, same bytes, same signature
hash). Every read is bounds-checked and raises ``MalformedRecord``.
"""
from __future__ import annotations

import struct

from .errors import InvalidField, MalformedRecord

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Writer:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def raw(self, data: bytes) -> None:
        self._parts.append(bytes(data))

    def u8(self, value: int) -> None:
        self._parts.append(_int_bytes(value, 1))

    def u16(self, value: int) -> None:
        self._parts.append(_int_bytes(value, 2))

    def u32(self, value: int) -> None:
        self._parts.append(_int_bytes(value, 4))

    def u64(self, value: int) -> None:
        self._parts.append(_int_bytes(value, 8))

    def var8(self, data: bytes) -> None:
        if len(data) > 0xFF:
            raise InvalidField("field longer than 255 bytes")
        self.u8(len(data))
        self.raw(data)

    def var16(self, data: bytes) -> None:
        if len(data) > 0xFFFF:
            raise InvalidField("field longer than 65535 bytes")
        self.u16(len(data))
        self.raw(data)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


def _int_bytes(value: int, width: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >= 1 << (8 * width):
        raise InvalidField(f"integer {value!r} does not fit {width} unsigned bytes")
    return value.to_bytes(width, "big")


class Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise MalformedRecord(f"truncated record while reading {what}")
        out = self._data[self._pos:end]
        self._pos = end
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return _U16.unpack(self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return _U32.unpack(self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return _U64.unpack(self.take(8, what))[0]

    def var8(self, what: str, max_len: int) -> bytes:
        n = self.u8(what)
        if n > max_len:
            raise InvalidField(f"{what} longer than {max_len} bytes")
        return self.take(n, what)

    def var16(self, what: str, max_len: int) -> bytes:
        n = self.u16(what)
        if n > max_len:
            raise InvalidField(f"{what} longer than {max_len} bytes")
        return self.take(n, what)

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise MalformedRecord("trailing bytes after record")
