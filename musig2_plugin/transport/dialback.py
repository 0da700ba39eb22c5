"""Endpoint learning and dial-back: may a node advertise itself as directly reachable?

Why: a node behind a NAT knows neither its public address nor whether the router forwards its
port; advertising the listen address (127.0.0.1, 0.0.0.0, 192.168.x.y) sends every peer to a
dead end. So it asks peers:

1. The node N asks a peer P ``m2.dialback [N's key, port, nonce]`` on an ordinary connection.
2. P reads the source address of that connection: the address N is seen from (its public IP
   behind a NAT). P then opens a *fresh* connection to that IP (never any other: P cannot be
   used to aim traffic at a third party) on the port N names, and sends a random challenge
   ``m2.dialback.challenge [challenge]``.
3. Whoever answers there must sign ``tagged_hash(DIALBACK_TAG, challenge ‖ P's key)`` with N's
   key; P checks it (an open port of someone else does not count) and answers N with
   ``{"seen": [ip, port], "reachable": bool}``.

N collects several answers (``probe_reachability``): the public IP most peers saw, and
"reachable" when a peer's dial-back verified. Peers are untrusted: one peer's claim of an
address is only a vote, and a dial-back verified by one peer proves the port is open to at
least that peer (the node then advertises the IP it was reached on, as seen by the majority).
Bounds: a node-wide token bucket for dial-backs served, one connect timeout per attempt.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Iterable

from aiorpcx import RPCError
from aiorpcx.rawsocket import RSTransport
from aiorpcx.session import SessionKind

from ..crypto import schnorr_sign, schnorr_verify, tagged_hash
from ..foundation import constants as C
from ..foundation.errors import Musig2Error
from ..foundation.endpoint import Endpoint
from .guards import TokenBucket
from .peer import ClientSession, PeerRefused, PeerUnreachable

if TYPE_CHECKING:
    from .node import Transport

log = logging.getLogger(__name__)

ERR_DIALBACK = -32020
CHALLENGE_LEN = 32


class DialbackRefusal(Musig2Error):
    """A dial-back request refused; the class name starts the JSON-RPC error message."""

    def rpc_error(self) -> RPCError:
        return RPCError(ERR_DIALBACK, f"{type(self).__name__}: {self}")


class MalformedDialback(DialbackRefusal):
    pass


class DialbackBusy(DialbackRefusal):
    pass


def challenge_digest(challenge: bytes, verifier: bytes) -> bytes:
    return tagged_hash(C.DIALBACK_TAG, challenge + verifier)


@dataclass
class DialbackResult:
    """One peer's answer: the address it saw us from, and whether its dial-back verified."""

    peer: Endpoint
    seen: tuple[str, int] | None = None
    reachable: bool = False
    error: str | None = None


@dataclass
class Reachability:
    """What the peers told us, put together."""

    public_ip: str | None
    reachable: bool
    results: list[DialbackResult] = field(default_factory=list)
    #: Why a verified address was not published (the chain's rule), if it was not.
    refused: str | None = None

    def endpoint(self, port: int) -> Endpoint | None:
        """The direct endpoint to advertise, or None (use a relay)."""
        if not self.reachable or self.public_ip is None:
            return None
        return Endpoint(self.public_ip, port)


class DialbackService:
    """Both sides, attached to a transport: serves dial-backs and answers challenges."""

    def __init__(self, transport: "Transport", *, rate_per_sec: float = 5.0,
                 burst: int = 20) -> None:
        self.transport = transport
        self._bucket = TokenBucket(rate_per_sec, burst)
        self.served = 0
        transport.extra_methods[C.RPC_DIALBACK] = self._serve
        transport.extra_methods[C.RPC_DIALBACK_CHALLENGE] = self._answer_challenge

    # -- our server answering a challenge ---------------------------------------------
    async def _answer_challenge(self, args: list, conn) -> object:
        if len(args) != 2 or not all(isinstance(a, str) for a in args) \
                or len(args[0]) != 2 * CHALLENGE_LEN or len(args[1]) != 66:
            raise MalformedDialback("challenge takes [challenge hex, verifier key hex]").rpc_error()
        try:
            challenge, verifier = bytes.fromhex(args[0]), bytes.fromhex(args[1])
        except ValueError:
            raise MalformedDialback("challenge is not hex").rpc_error() from None
        sig = schnorr_sign(self.transport.seckey, challenge_digest(challenge, verifier))
        return [self.transport.pubkey.hex(), sig.hex()]

    # -- a peer asking us to dial it back -------------------------------------------------
    async def _serve(self, args: list, conn) -> object:
        try:
            return await self._dialback(args, conn)
        except DialbackRefusal as exc:
            raise exc.rpc_error() from None

    async def _dialback(self, args: list, conn) -> dict:
        if len(args) != 2 or not isinstance(args[0], str) or len(args[0]) != 66 \
                or isinstance(args[1], bool) or not isinstance(args[1], int) \
                or not 1 <= args[1] <= 65535:
            raise MalformedDialback("dial-back takes [key hex, port]")
        try:
            key = bytes.fromhex(args[0])
        except ValueError:
            raise MalformedDialback("key is not hex") from None
        if key[0] not in (2, 3):
            raise MalformedDialback("key is not a compressed key")
        remote = conn.remote_address()
        if remote is None:
            raise MalformedDialback("no remote address")
        ip = str(remote.host)
        seen = [ip, int(remote.port)]
        if not self._bucket.take():
            raise DialbackBusy("too many dial-backs; try later")
        self.served += 1
        reachable = await self._dial(ip, args[1], key)
        return {"seen": seen, "reachable": reachable}

    async def _dial(self, ip: str, port: int, key: bytes) -> bool:
        """A fresh connection to ``ip:port``: does the node holding ``key`` answer there?"""
        cfg = self.transport.config
        loop = asyncio.get_running_loop()
        factory = partial(RSTransport, partial(ClientSession, cfg), None, SessionKind.CLIENT)
        challenge = os.urandom(CHALLENGE_LEN)
        session = None
        try:
            _t, protocol = await asyncio.wait_for(loop.create_connection(factory, ip, port),
                                                  cfg.connect_timeout)
            session = protocol.session
            answer = await asyncio.wait_for(
                session.send_request(C.RPC_DIALBACK_CHALLENGE,
                                     [challenge.hex(), self.transport.pubkey.hex()]),
                cfg.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("dial-back to %s:%s failed: %r", ip, port, exc)
            return False
        finally:
            if session is not None:
                try:
                    await asyncio.wait_for(session.close(force_after=0.5), 2)
                except Exception:
                    pass
        if not isinstance(answer, list) or len(answer) != 2 \
                or not all(isinstance(a, str) for a in answer):
            return False
        try:
            who, sig = bytes.fromhex(answer[0]), bytes.fromhex(answer[1])
        except ValueError:
            return False
        return who == key and len(sig) == 64 and \
            schnorr_verify(key[1:], challenge_digest(challenge, self.transport.pubkey), sig)


async def ask_dialback(transport: "Transport", peer: Endpoint, port: int) -> DialbackResult:
    """Ask one peer what it sees and to dial us back on ``port``."""
    result = DialbackResult(Endpoint.of(peer))
    try:
        answer = await transport.pool.request(result.peer.address, C.RPC_DIALBACK,
                                              [transport.pubkey.hex(), int(port)])
    except (PeerRefused, PeerUnreachable) as exc:
        result.error = str(exc)
        return result
    seen = answer.get("seen") if isinstance(answer, dict) else None
    if not (isinstance(seen, list) and len(seen) == 2 and isinstance(seen[0], str)
            and isinstance(seen[1], int) and not isinstance(seen[1], bool)):
        result.error = "malformed answer"
        return result
    try:
        ipaddress.ip_address(seen[0])
    except ValueError:
        result.error = "answer names no IP address"
        return result
    result.seen = (seen[0], seen[1])
    result.reachable = answer.get("reachable") is True
    return result


async def probe_reachability(transport: "Transport", peers: Iterable[Endpoint],
                             port: int) -> Reachability:
    """Ask every peer at once; the public IP is the one most answers saw."""
    results = await asyncio.gather(*(ask_dialback(transport, p, port) for p in peers))
    votes = Counter(r.seen[0] for r in results if r.seen is not None)
    public_ip = votes.most_common(1)[0][0] if votes else None
    reachable = any(r.reachable and r.seen is not None and r.seen[0] == public_ip
                    for r in results)
    return Reachability(public_ip, reachable, list(results))
