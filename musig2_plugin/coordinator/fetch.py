"""Payloads too large for a DHT record: the creator serves them, participants fetch them.

A DHT record must fit one UDP datagram, so a request whose encrypted payload is larger
carries only a commitment (SHA-256 and length, inside the creator's signature) and the
creator's endpoint. A participant that finds such a record (in the DHT or pushed) asks the
creator for the bytes over the authenticated transport, in chunks that fit the peer frame
limit, and checks them against the commitment before any decryption: the creator (or anyone
on the plain-TCP path) cannot make us act on other bytes than the ones it signed for.

FETCH body (big-endian): offset u32 | max_len u32; the answer is the hex of
``blob[offset:offset + max_len]`` (at most ``PAYLOAD_CHUNK_BYTES``).
"""
from __future__ import annotations

import asyncio
import struct
from collections import OrderedDict
from typing import Collection

from ..foundation import constants as C
from ..records import PayloadRef
from ..transport import BadFetch, Envelope, MsgType, PeerRefused, PeerUnreachable, Transport
from .errors import OversizedPayloadReply, PayloadFetchError, PayloadMismatch

FETCH_BODY = struct.Struct(">II")


class PayloadStore:
    """The committed payloads of requests we created, bounded (oldest dropped first).

    Only participants of the request may read them (the transport checks the FETCH
    signature and asks ``members``); the bytes are encrypted to them anyway, but serving
    them to anyone would make us a free bandwidth amplifier.
    """

    def __init__(self, max_items: int) -> None:
        self._max = max_items
        self._items: OrderedDict[bytes, tuple[frozenset, bytes]] = OrderedDict()

    def put(self, key: bytes, participants: Collection[bytes], blob: bytes) -> None:
        self._items[key] = (frozenset(bytes(k) for k in participants), bytes(blob))
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, key: bytes) -> bytes | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def members(self, key: bytes) -> frozenset | None:
        item = self._items.get(key)
        return None if item is None else item[0]

    def serve(self, env: Envelope) -> bytes:
        blob = self.get(env.session_id)
        if blob is None:        # evicted between admission and here
            raise BadFetch("payload no longer served")
        if len(env.body) != FETCH_BODY.size:
            raise BadFetch("FETCH body must be offset u32 | max_len u32")
        offset, max_len = FETCH_BODY.unpack(env.body)
        if offset >= len(blob) or not 1 <= max_len <= C.PAYLOAD_CHUNK_BYTES:
            raise BadFetch("offset beyond the payload or chunk size out of range")
        return blob[offset:offset + max_len]


async def fetch_payload(transport: Transport, endpoint: tuple[str, int], key: bytes,
                        ref: PayloadRef, *, timeout: float = C.PAYLOAD_FETCH_TIMEOUT_S) -> bytes:
    """The committed payload, fetched from ``endpoint`` and checked against ``ref``.

    Raises PayloadFetchError (or its subclasses PayloadMismatch, OversizedPayloadReply).
    """
    # Hex doubles the bytes; leave room for the JSON-RPC wrapping inside the peer frame cap.
    chunk_max = min(C.PAYLOAD_CHUNK_BYTES, (transport.config.max_message_bytes - 1024) // 2)
    if chunk_max < 1:
        raise PayloadFetchError("max_message_bytes too small to fetch payloads")

    async def run() -> bytes:
        buf = bytearray()
        while len(buf) < ref.length:
            want = min(chunk_max, ref.length - len(buf))
            env = transport.seal(MsgType.FETCH, key, FETCH_BODY.pack(len(buf), want))
            try:
                answer = await transport.fetch_chunk(endpoint, env)
            except (PeerUnreachable, PeerRefused) as exc:
                raise PayloadFetchError(f"creator did not serve the payload: {exc}") from None
            if not isinstance(answer, str):
                raise PayloadFetchError("creator's answer is not a hex string")
            if len(answer) > 2 * want:
                raise OversizedPayloadReply(
                    f"creator answered {len(answer) // 2} bytes, {want} asked for")
            try:
                chunk = bytes.fromhex(answer)
            except ValueError:
                raise PayloadFetchError("creator's answer is not hex") from None
            if not chunk:
                raise PayloadFetchError("creator sent an empty chunk before the end")
            buf += chunk
        return bytes(buf)

    try:
        blob = await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        raise PayloadFetchError(f"fetching the payload took longer than {timeout} s") from None
    if not ref.matches(blob):
        raise PayloadMismatch("served payload does not match the request's signed commitment")
    return blob
