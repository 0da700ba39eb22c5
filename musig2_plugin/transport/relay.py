"""Relays: a reachable node passes messages to a node that cannot accept connections.

Why: most wallets sit behind a NAT that refuses inbound connections. Such a node (the
*client*) keeps an outbound connection to a reachable node (the *relay*), reserves a slot there
with a reservation signed by its participant key, and advertises "reachable through relay R"
(R's key and endpoint) inside its own signed advertisement. A peer sends to the relay
``m2.relay.send [client key, method, argument]``; the relay passes ``[method, argument]`` down
the client's connection (``m2.relay.deliver``) and returns the client's answer unchanged.

The relay is untrusted: what it carries are the same end-to-end signed envelopes and
records (payloads encrypted to the participants) as on a direct connection, and the client runs
them through the same admission pipeline. A relay can drop, delay or replay; the first two are
detected by timeouts (``RelayUnreachable`` names the relay), the last by the replay window. It
cannot forge, alter or read a request's payload.

Bounds (``Musig2Config.relay_*``): reservations held, one per connection, expiry, bytes and
messages per reservation per period and for the whole relay, frame size, deliveries in flight.
Every refusal is a typed error whose class name starts the JSON-RPC error message.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import struct
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Callable, Iterable

from aiorpcx import NewlineFramer, RPCError, RPCSession
from aiorpcx.rawsocket import RSTransport
from aiorpcx.session import SessionKind

from ..foundation import constants as C
from ..foundation.config import Musig2Config
from ..foundation.errors import Musig2Error
from ..crypto import schnorr_sign, schnorr_verify, tagged_hash
from ..foundation.endpoint import Endpoint, Reach
from .guards import TokenBucket
from .hello import HandshakeFailed, check_hello, new_nonce
from .peer import BoundedConnection, PeerRefused, PeerUnreachable

if TYPE_CHECKING:
    from .node import Transport

log = logging.getLogger(__name__)

ERR_RELAY = -32010

_RES = struct.Struct(">B33s33sQ")
RESERVATION_LEN = _RES.size + 64


# --------------------------------------------------------------------------- refusals
class RelayRefusal(Musig2Error):
    """A relay refused a request; the class name is the first word of the error message."""

    def rpc_error(self) -> RPCError:
        return RPCError(ERR_RELAY, f"{type(self).__name__}: {self}")


class RelayDisabled(RelayRefusal):
    """This node does not relay."""


class MalformedRelayFrame(RelayRefusal):
    """Wrong argument count or types, bad hex, unknown inner method, bad key."""


class RelayFrameTooLarge(RelayRefusal):
    """The relayed argument exceeds ``relay_max_frame_bytes``."""


class BadReservation(RelayRefusal):
    """A reservation that is malformed, for another relay, stale, or not signed by its key."""


class RelayFull(RelayRefusal):
    """Every reservation slot is taken (by live, unexpired clients)."""


class NoReservation(RelayRefusal):
    """Nobody holds a live reservation for that key here."""


class RelayQuotaExceeded(RelayRefusal):
    """The reservation's or the relay's byte/message budget is spent for now."""


class RelayClientSilent(RelayRefusal):
    """The client did not answer its delivery in time (or its connection is gone)."""


class RelayUnreachable(PeerUnreachable):
    """Delivery through a relay failed without an answer from the target: names the relay."""

    def __init__(self, relay: Endpoint, target: bytes, why: str) -> None:
        self.relay = relay
        self.target = target
        super().__init__(f"through {relay}: {why} (target {target.hex()[:16]})")


# --------------------------------------------------------------------------- reservation
def sign_reservation(seckey: bytes, client_key: bytes, relay_key: bytes,
                     now: float | None = None) -> bytes:
    """``version u8 | relay key 33 | client key 33 | time_ms u64 | BIP-340 signature 64``.

    Naming the relay keeps a reservation from being replayed to another relay; the time keeps
    an old one from being replayed later (clock skew window).
    """
    t = int((time.time() if now is None else now) * 1000)
    body = _RES.pack(C.RELAY_RESERVATION_VERSION, relay_key, client_key, t)
    return body + schnorr_sign(seckey, tagged_hash(C.RELAY_RESERVATION_TAG, body))


def check_reservation(data: bytes, relay_key: bytes, max_skew: float,
                      now: float | None = None) -> bytes:
    """The client key of a valid reservation for ``relay_key``; BadReservation otherwise."""
    if len(data) != RESERVATION_LEN:
        raise BadReservation("reservation has the wrong length")
    version, rkey, ckey, t = _RES.unpack_from(data, 0)
    if version != C.RELAY_RESERVATION_VERSION:
        raise BadReservation(f"unknown reservation version {version}")
    if rkey != relay_key:
        raise BadReservation("reservation is for another relay")
    if ckey[0] not in (2, 3):
        raise BadReservation("client key is not a compressed key")
    if abs(t - (time.time() if now is None else now) * 1000) > max_skew * 1000:
        raise BadReservation("reservation time outside the accepted clock skew")
    if not schnorr_verify(ckey[1:], tagged_hash(C.RELAY_RESERVATION_TAG, data[:_RES.size]),
                          data[_RES.size:]):
        raise BadReservation("reservation signature does not verify")
    return ckey


def _hexarg(v: object, max_bytes: int, what: str) -> bytes:
    if not isinstance(v, str):
        raise MalformedRelayFrame(f"{what} must be a hex string")
    if len(v) > 2 * max_bytes:
        raise RelayFrameTooLarge(f"{what} exceeds {max_bytes} bytes")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise MalformedRelayFrame(f"{what} is not hex") from None


# --------------------------------------------------------------------------- relay side
@dataclass
class Reservation:
    key: bytes
    conn: RPCSession
    expires: float
    period_start: float
    bytes: int = 0
    messages: int = 0
    inflight: int = 0


@dataclass
class RelayStats:
    """What a relay has carried, in all and per client key (a relay's cost, measured)."""

    messages: int = 0
    bytes: int = 0
    probes: int = 0                                  # clients' echoes (kept apart from traffic)
    per_client: dict = field(default_factory=dict)   # key -> [messages, bytes], bounded
    refusals: dict = field(default_factory=dict)     # refusal class name -> count

    def charge(self, key: bytes, nbytes: int, max_keys: int) -> None:
        self.messages += 1
        self.bytes += nbytes
        entry = self.per_client.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += nbytes
        while len(self.per_client) > max_keys:
            del self.per_client[next(iter(self.per_client))]


class RelayService:
    """The relay role of a reachable node's transport server (``Transport.enable_relay``)."""

    def __init__(self, pubkey: bytes, config: Musig2Config) -> None:
        self.pubkey = pubkey
        self.config = config
        self.reservations: dict[bytes, Reservation] = {}
        self.stats = RelayStats()
        #: Called with (client key, method, argument bytes) of every frame passed on (tests
        #: check what a relay can see).
        self.observers: list[Callable[[bytes, str, bytes], None]] = []
        self._bytes = TokenBucket(config.relay_total_bytes_per_sec,
                                  4 * config.relay_total_bytes_per_sec)
        self._messages = TokenBucket(config.relay_total_messages_per_sec,
                                     4 * config.relay_total_messages_per_sec)

    async def handle(self, method: str, args: list, conn: RPCSession) -> object:
        try:
            if method == C.RPC_RELAY_RESERVE:
                return self._reserve(args, conn)
            return await self._send(args)
        except RelayRefusal as exc:
            name = type(exc).__name__
            self.stats.refusals[name] = self.stats.refusals.get(name, 0) + 1
            raise exc.rpc_error() from None

    # -- reservations ------------------------------------------------------------------
    def _prune(self, now: float) -> None:
        for key in [k for k, r in self.reservations.items()
                    if r.expires <= now or r.conn.is_closing()]:
            del self.reservations[key]

    def _reserve(self, args: list, conn: RPCSession) -> dict:
        if len(args) != 1:
            raise MalformedRelayFrame("reserve takes one argument")
        data = _hexarg(args[0], RESERVATION_LEN, "reservation")
        key = check_reservation(data, self.pubkey, self.config.max_clock_skew)
        now = time.monotonic()
        self._prune(now)
        for other in self.reservations.values():
            if other.conn is conn and other.key != key:
                raise BadReservation("one reservation per connection")
        res = self.reservations.get(key)
        ttl = self.config.relay_reservation_ttl
        if res is None:
            if len(self.reservations) >= self.config.relay_max_reservations:
                raise RelayFull("no free reservation slot")
            res = Reservation(key, conn, now + ttl, now)
            self.reservations[key] = res
        else:
            # The key signed afresh: its newest connection wins (a client that reconnected).
            res.conn = conn
            res.expires = now + ttl
        return {"ttl": ttl}

    # -- passing frames on -------------------------------------------------------------
    async def _send(self, args: list) -> object:
        cfg = self.config
        if len(args) != 3:
            raise MalformedRelayFrame("send takes [target key, method, argument]")
        target = _hexarg(args[0], 33, "target key")
        if len(target) != 33 or target[0] not in (2, 3):
            raise MalformedRelayFrame("target is not a compressed key")
        method, arg = args[1], args[2]
        if not isinstance(method, str) or method not in C.RELAYED_METHODS:
            raise MalformedRelayFrame("method is not relayed")
        payload = _hexarg(arg, cfg.relay_frame_limit, "argument")
        now = time.monotonic()
        res = self.reservations.get(target)
        if res is None or res.expires <= now or res.conn.is_closing():
            self.reservations.pop(target, None)
            raise NoReservation("no live reservation for that key")
        if now - res.period_start >= cfg.relay_reservation_ttl:
            res.period_start, res.bytes, res.messages = now, 0, 0
        if res.messages >= cfg.relay_messages_per_reservation \
                or res.bytes + len(payload) > cfg.relay_bytes_per_reservation:
            raise RelayQuotaExceeded("this client's relay budget is spent for now")
        if res.inflight >= cfg.relay_max_inflight_per_reservation:
            raise RelayQuotaExceeded("too many deliveries in flight to this client")
        if not self._messages.take() or not self._bytes.take(len(payload)):
            raise RelayQuotaExceeded("the relay's total budget is spent for now")
        res.messages += 1
        res.bytes += len(payload)
        for observer in list(self.observers):
            observer(target, method, payload)
        res.inflight += 1
        try:
            answer = await asyncio.wait_for(
                res.conn.send_request(C.RPC_RELAY_DELIVER, [method, arg]),
                cfg.relay_deliver_timeout)
        except RPCError as exc:
            # The client refused (e.g. a tampered envelope): passed back word for word.
            self.stats.charge(target, len(payload), cfg.relay_max_reservations * 4)
            raise RPCError(exc.code, f"client refused: {exc.message}") from None
        except Exception:
            raise RelayClientSilent("the client did not answer its delivery") from None
        finally:
            res.inflight -= 1
        size = len(payload) + (len(answer) // 2 if isinstance(answer, str) else 8)
        res.bytes += size - len(payload)
        if method == C.RPC_RELAY_PROBE:
            self.stats.probes += 1
        else:
            self.stats.charge(target, size, cfg.relay_max_reservations * 4)
        return answer


# --------------------------------------------------------------------------- client side
class RelayClientSession(RPCSession):
    """Our outbound connection to a relay: it may send us ``m2.relay.deliver`` requests.

    Delivered frames go through the transport's normal dispatch (same admission pipeline as a
    direct connection). Junk a relay passes on is refused but never closes the connection:
    the junk may come from anyone on the internet, and the relay is our way in.
    """

    def __init__(self, link: "RelayLink", transport):
        self._link = link
        self._config = link.transport.config
        self.processing_timeout = self._config.request_timeout
        self.initial_concurrent = self._config.max_concurrent_per_peer
        super().__init__(transport)
        self._bucket = TokenBucket(self._config.peer_rate_per_sec, self._config.peer_burst)
        self.invalid_messages = 0

    def default_framer(self):
        return NewlineFramer(max_size=self._config.max_message_bytes)

    def default_connection(self):
        return BoundedConnection(self, self._config.max_pending_per_peer)

    def charge_invalid(self) -> bool:
        self.invalid_messages += 1
        return False

    async def handle_request(self, request):
        args = request.args
        if request.method != C.RPC_RELAY_DELIVER or not isinstance(args, list) \
                or len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise RPCError(ERR_RELAY, "MalformedRelayFrame: only deliveries come down this link")
        if not self._bucket.take():
            raise RPCError(ERR_RELAY, "RelayQuotaExceeded: delivery rate exceeded")
        method, arg = args
        if method == C.RPC_RELAY_PROBE:
            return self._link.probe_answer(arg)
        return await self._link.transport.dispatch(method, [arg], self)


class RelayLink:
    """One reservation at one relay: the connection, renewal, and the probe that detects a
    relay that went silent or drops what it should pass on."""

    def __init__(self, transport: "Transport", relay: Endpoint) -> None:
        if relay.kind is not Reach.RELAY:
            raise ValueError("a relay link needs a relay endpoint (the relay's key)")
        self.transport = transport
        self.relay = relay
        self.session: RelayClientSession | None = None
        self.ttl = 0.0
        self.reserved_at = 0.0
        self._probe_secret = os.urandom(32)

    @property
    def alive(self) -> bool:
        return self.session is not None and not self.session.is_closing()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        factory = partial(RSTransport, partial(RelayClientSession, self), None,
                          SessionKind.CLIENT)
        try:
            _t, protocol = await asyncio.wait_for(
                loop.create_connection(factory, self.relay.host, self.relay.port),
                self.transport.config.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise RelayUnreachable(self.relay, self.transport.pubkey,
                                   f"cannot connect: {exc!r}") from None
        self.session = protocol.session
        self.session.sent_request_timeout = self.transport.config.request_timeout
        # The relay proves the key that goes into our signed endpoint before we reserve
        # (hello.py, chain-bound): an impostor at its address is refused here, not by senders.
        nonce = new_nonce()
        answer = await self._call(C.RPC_HELLO, [nonce.hex()])
        try:
            check_hello(answer, expect=self.relay.relay_key, chain_id=self.transport.chain_id,
                        nonce=nonce)
        except HandshakeFailed as exc:
            await self.close()
            raise PeerRefused(f"{self.relay}: {exc}") from None
        await self.reserve()

    async def _call(self, method: str, args: list) -> object:
        if not self.alive:
            raise RelayUnreachable(self.relay, self.transport.pubkey, "link is closed")
        session = self.session
        try:
            return await asyncio.wait_for(session.send_request(method, args),
                                          self.transport.config.request_timeout + 1)
        except RPCError as exc:
            raise PeerRefused(f"relay {self.relay}: {exc.message}") from None
        except asyncio.CancelledError:
            if not session.is_closing():    # we were cancelled, not the connection lost
                raise
            raise RelayUnreachable(self.relay, self.transport.pubkey, "link closed") from None
        except Exception as exc:
            await self.close()
            raise RelayUnreachable(self.relay, self.transport.pubkey, f"no answer: {exc!r}") \
                from None

    async def reserve(self) -> None:
        data = sign_reservation(self.transport.seckey, self.transport.pubkey,
                                self.relay.relay_key)
        answer = await self._call(C.RPC_RELAY_RESERVE, [data.hex()])
        if not isinstance(answer, dict) or not isinstance(answer.get("ttl"), (int, float)) \
                or answer["ttl"] <= 0:
            raise PeerRefused(f"relay {self.relay}: bad reservation answer")
        self.ttl = float(answer["ttl"])
        self.reserved_at = time.monotonic()

    def probe_answer(self, arg: str) -> str:
        """Only we can answer our probe (the relay does not know the secret)."""
        return hashlib.sha256(self._probe_secret + arg.encode()).hexdigest()

    async def probe(self) -> bool:
        """An echo through the relay back to ourselves; False when the relay is silent,
        drops it, or answers something only a forger would."""
        nonce = os.urandom(16).hex()
        try:
            answer = await self._call(C.RPC_RELAY_SEND,
                                      [self.transport.pubkey.hex(), C.RPC_RELAY_PROBE, nonce])
        except (PeerRefused, PeerUnreachable) as exc:
            log.info("relay %s failed its probe: %s", self.relay, exc)
            return False
        return answer == self.probe_answer(nonce)

    async def maintain(self) -> bool:
        """Renew when a third of the TTL is left, then probe; False: move to another relay."""
        try:
            if time.monotonic() - self.reserved_at > self.ttl * 2 / 3:
                await self.reserve()
        except (PeerRefused, PeerUnreachable):
            return False
        return await self.probe()

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                await asyncio.wait_for(session.close(force_after=0.5), 2)
            except Exception:
                pass


class RelayClient:
    """Keeps ``want`` working relays out of ``candidates`` for an unreachable node.

    A relay that fails to connect, refuses, or fails a probe is set aside for
    ``2 * relay_probe_interval`` and the next candidate is tried; ``on_change`` gets the new
    list of relay endpoints (the node re-advertises them).
    """

    def __init__(self, transport: "Transport", candidates: Iterable[Endpoint], *, want: int = 1,
                 on_change: Callable[[list[Endpoint]], None] | None = None) -> None:
        self.transport = transport
        self.candidates: list[Endpoint] = [Endpoint.of(c) for c in candidates]
        self.want = want
        self.on_change = on_change
        self.links: list[RelayLink] = []
        self.failed: dict[Endpoint, float] = {}
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()     # one check at a time (the loop, or a caller)

    @property
    def endpoints(self) -> list[Endpoint]:
        return [link.relay for link in self.links if link.alive]

    def add_candidates(self, candidates: Iterable[Endpoint]) -> None:
        for c in candidates:
            if c not in self.candidates and c.relay_key != self.transport.pubkey:
                self.candidates.append(c)

    async def check(self) -> list[Endpoint]:
        """Probe the links, replace failed ones; returns the working relays."""
        async with self._lock:
            return await self._check()

    async def _check(self) -> list[Endpoint]:
        before = self.endpoints
        now = time.monotonic()
        for link in list(self.links):
            if not link.alive or not await link.maintain():
                self.links.remove(link)
                self.failed[link.relay] = now
                await link.close()
        in_use = {link.relay for link in self.links}
        cooldown = 2 * self.transport.config.relay_probe_interval
        for cand in self.candidates:
            if len(self.links) >= self.want:
                break
            if cand in in_use or now - self.failed.get(cand, -1e9) < cooldown:
                continue
            link = RelayLink(self.transport, cand)
            try:
                await link.open()
                if not await link.probe():
                    raise PeerUnreachable("probe failed")
            except (PeerRefused, PeerUnreachable) as exc:
                log.info("relay %s not usable: %s", cand, exc)
                self.failed[cand] = now
                await link.close()
                continue
            self.links.append(link)
        after = self.endpoints
        if after != before and self.on_change is not None:
            self.on_change(after)
        return after

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.transport.config.relay_probe_interval)
            try:
                await self.check()
            except Exception:
                log.exception("relay maintenance failed")

    async def start(self) -> list[Endpoint]:
        found = await self.check()
        self._task = asyncio.ensure_future(self._run())
        return found

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for link in self.links:
            await link.close()
        self.links.clear()
