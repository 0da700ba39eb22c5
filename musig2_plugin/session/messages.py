"""Bodies of the session protocol's messages: compact JSON, validated field by field.

The envelope's signature already covers the exact body bytes, so the body
needs no canonical form; what it needs is a strict parser: every field present,
of the right type and size, nothing extra. A body that fails is the sender's
fault (it signed it) and is refused with ``BadBody``, which the transport
charges to the sender's key.
"""
from __future__ import annotations

import json
from typing import Any

from ..foundation import constants as C
from ..foundation.endpoint import Endpoint, InvalidEndpoint
from ..transport import AuthenticRefusal, MsgType

MAX_ATTEMPT = 1 << 31
MAX_EPOCH = 1 << 16
MAX_REASON = 200
MAX_HOST = 253


class BadBody(AuthenticRefusal):
    """A correctly signed message whose body is malformed."""


def _int(v: Any, lo: int, hi: int, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise BadBody(f"{name} must be an integer in {lo}..{hi}")
    return v


def _hex(v: Any, length: int, name: str) -> bytes:
    if not isinstance(v, str) or len(v) != 2 * length:
        raise BadBody(f"{name} must be {length} bytes of hex")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise BadBody(f"{name} is not hex") from None


def _endpoint(v: Any) -> Endpoint | None:
    """``[host, port]`` (direct) or the relay/onion forms of ``Endpoint.to_json``."""
    if v is None:
        return None
    if isinstance(v, list) and v and isinstance(v[0], str) and len(v[0]) > MAX_HOST:
        raise BadBody("endpoint host too long")
    try:
        return Endpoint.from_json(v)
    except InvalidEndpoint as exc:
        raise BadBody(f"bad endpoint: {exc}") from None


# Field specs: name -> parser(value, context). ``n`` is the session's participant count.
_SPEC = {
    MsgType.JOIN: ("e", "la", "f", "ep", "jn"),
    MsgType.READY: ("e", "a"),
    MsgType.NONCE: ("e", "a", "pn"),
    MsgType.NONCES: ("e", "a", "pns", "an"),
    MsgType.PSIG: ("e", "a", "ps"),
    MsgType.FINAL: ("e", "a", "sig"),
    MsgType.ABORT: ("e", "a", "why", "who"),
}

_NAMES = {"e": "epoch", "a": "attempt", "la": "last_attempt", "f": "fresh", "ep": "endpoint",
          "jn": "join_nonce",
          "pn": "pubnonce", "pns": "pubnonces", "an": "aggnonce", "ps": "psig", "sig": "signature",
          "why": "reason", "who": "culprits"}


def encode_body(msg_type: MsgType, **fields: Any) -> bytes:
    out: dict[str, Any] = {}
    for short in _SPEC[msg_type]:
        value = fields[_NAMES[short]] if short != "jn" else fields.get(_NAMES[short])
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).hex()
        elif isinstance(value, (list, tuple)):
            value = [x.hex() if isinstance(x, (bytes, bytearray)) else x for x in value]
        out[short] = value
    return json.dumps(out, separators=(",", ":"), sort_keys=True).encode()


def decode_body(msg_type: MsgType, body: bytes, n: int) -> dict[str, Any]:
    """Parse and validate; returns the fields under their long names."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadBody("body is not JSON") from None
    except RecursionError:   # "[[[[..." nests deeper than the parser's stack: still just junk
        raise BadBody("body nests too deeply") from None
    spec = _SPEC.get(msg_type)
    if spec is None:     # e.g. FETCH: a transport message, never a session body
        raise BadBody(f"{msg_type.name} is not a session message")
    if not isinstance(raw, dict) or set(raw) != set(spec):
        raise BadBody(f"{msg_type.name} body must have exactly the fields {sorted(spec)}")
    out: dict[str, Any] = {}
    for short in spec:
        v = raw[short]
        name = _NAMES[short]
        if short == "e":
            out[name] = _int(v, 0, MAX_EPOCH, name)
        elif short in ("a",):
            out[name] = _int(v, 0, MAX_ATTEMPT, name)
        elif short == "la":
            out[name] = _int(v, -1, MAX_ATTEMPT, name)
        elif short == "f":
            if not isinstance(v, bool):
                raise BadBody("fresh must be a boolean")
            out[name] = v
        elif short == "ep":
            out[name] = _endpoint(v)
        elif short == "jn":        # the public nonce for attempt last_attempt + 1, or null
            out[name] = None if v is None else _hex(v, C.PUBNONCE_LEN, name)
        elif short in ("pn", "an"):
            out[name] = _hex(v, C.PUBNONCE_LEN, name)
        elif short == "pns":
            if not isinstance(v, list) or len(v) != n:
                raise BadBody(f"pubnonces must list {n} nonces")
            out[name] = [_hex(x, C.PUBNONCE_LEN, "pubnonce") for x in v]
        elif short == "ps":
            out[name] = _hex(v, C.PARTIAL_SIG_LEN, name)
        elif short == "sig":
            out[name] = _hex(v, C.SCHNORR_SIG_LEN, name)
        elif short == "why":
            if not isinstance(v, str) or len(v) > MAX_REASON:
                raise BadBody("reason must be a short string")
            out[name] = v
        elif short == "who":
            if not isinstance(v, list) or len(v) > n:
                raise BadBody("culprits must list at most n keys")
            out[name] = [_hex(x, C.PUBKEY_LEN, "culprit") for x in v]
    return out
