"""aiorpcx sessions: the node's server and its pool of client connections to peers.

We use aiorpcx's JSON-RPC over newline framing because the seed's anchor does
and because it gives request/answer pairing, per-session concurrency control and
a bounded framer for free. Each protocol message travels as one request whose
answer is an acknowledgement: data only ever flows in signed envelopes, so the
JSON layer carries nothing we would have to trust.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Awaitable, Callable

from aiorpcx import (JSONRPCConnection, JSONRPCv2, NewlineFramer, ReplyAndDisconnect, Request,
                     RPCError, RPCSession, SOCKSError, TaskTimeout)
from aiorpcx.rawsocket import RSTransport
from aiorpcx.session import SessionKind
from functools import partial

from ..foundation import constants as C
from ..foundation.config import Musig2Config
from ..foundation.errors import Musig2Error
from ..foundation.endpoint import Endpoint
from .dialguard import DialGuard, EndpointIgnored
from .guards import TokenBucket
from .hello import HandshakeFailed, check_hello, new_nonce

log = logging.getLogger(__name__)

#: What the client pool connects to: an endpoint's ``address`` (the node, or its relay).
Address = tuple[str, int]

# JSON-RPC error codes of our own (the -32000..-32099 range is for servers).
ERR_REFUSED = -32001
ERR_RATE = -32002
ERR_BAD_ARGS = -32003


class TransportError(Musig2Error):
    """Base of the errors a send can end with."""


class PeerUnreachable(TransportError):
    """Could not connect, or no answer within the request timeout: the peer is silent."""


class PeerRefused(TransportError):
    """The peer answered with an error: our message was refused."""


class PeerIgnored(PeerUnreachable):
    """Not dialed: the endpoint failed its handshake for that key, or too many attempts to it
    failed lately (dialguard.py). No traffic was sent."""


Handler = Callable[[str, list, "ServerSession"], Awaitable[object]]


class BoundedConnection(JSONRPCConnection):
    """JSON-RPC without batches and with a cap on requests awaiting an answer.

    WHY: aiorpcx spawns one task per incoming request *before* any of our
    checks (rate limit, concurrency) run, and a single framed JSON-RPC batch may
    hold thousands of requests. One 250 KB line from an unauthenticated peer
    would thus allocate ~6000 tasks, and the allowed number of connections
    multiplies that. Our protocol sends one request at a time and never
    batches, so a batch, or more than ``max_pending`` unanswered requests on one
    connection, is junk: it is dropped unparsed by the session layer and the
    connection is closed.
    """

    def __init__(self, session: RPCSession, max_pending: int) -> None:
        super().__init__(JSONRPCv2)
        self._session = session
        self._max_pending = max_pending
        self.overloaded = False

    def receive_message(self, message):
        if self.overloaded:
            return []
        if message.lstrip()[:1] == b"[" or \
                self._session.unanswered_request_count() >= self._max_pending:
            self.overloaded = True
            log.warning("peer sent a batch or too many unanswered requests; disconnecting")
            asyncio.get_running_loop().create_task(self._session.abort())
            return []
        return super().receive_message(message)


class ServerSession(RPCSession):
    """One inbound connection: rate-limited, size-bounded, closed after repeated junk."""

    def __init__(self, handler: Handler, config: Musig2Config, registry: set, transport):
        # aiorpcx reads these in SessionBase.__init__, so they must be set first.
        self.initial_concurrent = config.max_concurrent_per_peer
        self.processing_timeout = config.request_timeout
        self._config = config
        super().__init__(transport)
        self._handler = handler
        self._bucket = TokenBucket(config.peer_rate_per_sec, config.peer_burst)
        self.invalid_messages = 0
        self._registry = registry
        registry.add(self)
        if len(registry) > config.max_inbound_connections:
            # Refusing the newcomer would let anyone who opens the maximum number of silent
            # connections lock every honest peer out. Close the connection that has been
            # silent longest instead: an idle squatter goes first, and a busy one is
            # charged for its junk and disconnected anyway.
            victim = min((s for s in registry if s is not self),
                         key=lambda s: s.last_recv, default=self)
            registry.discard(victim)
            log.warning("too many inbound connections; closing the longest idle one")
            asyncio.get_event_loop().create_task(victim.abort())

    def default_framer(self):
        return NewlineFramer(max_size=self._config.max_message_bytes)

    def default_connection(self):
        return BoundedConnection(self, self._config.max_pending_per_peer)

    async def connection_lost(self):
        self._registry.discard(self)
        await super().connection_lost()

    def charge_invalid(self) -> bool:
        """Count junk that cannot be pinned on a key; True when the connection must close."""
        self.invalid_messages += 1
        return self.invalid_messages >= self._config.block_after_invalid

    async def handle_request(self, request):
        if not self._bucket.take():
            raise RPCError(ERR_RATE, "rate limit exceeded")
        args = request.args
        if not isinstance(args, list):
            raise RPCError(ERR_BAD_ARGS, "positional arguments expected")
        return await self._handler(request.method, args, self)


def make_refusal(message: str, disconnect: bool) -> Exception:
    err = RPCError(ERR_REFUSED, message)
    return ReplyAndDisconnect(err) if disconnect else err


class ClientSession(RPCSession):
    """Our outbound connection to a peer's server: we send requests, it only answers.

    A peer has no business sending *us* requests on it; any it sends are refused,
    and the same batch/pending bounds as on inbound connections apply, so the
    server we connected to cannot make us allocate either.
    """

    def __init__(self, config: Musig2Config, transport):
        self._config = config
        super().__init__(transport)

    def default_framer(self):
        return NewlineFramer(max_size=self._config.max_message_bytes)

    def default_connection(self):
        return BoundedConnection(self, self._config.max_pending_per_peer)

    async def handle_request(self, request):
        raise RPCError(ERR_BAD_ARGS, "this connection carries no requests to us")

    async def write_request(self, method: str, args: list) -> asyncio.Future:
        """Put one request on the wire now; returns the future of its answer.

        WHY not ``send_request``: that one queues behind aiorpcx's outgoing concurrency
        semaphore before writing, so the moment a message reaches the wire is not the
        moment it was sent. ``ClientPool`` writes under a per-peer lock instead, which is
        what keeps one peer's messages in the order they were sent.
        """
        message, future = self.connection.send_request(Request(method, args))
        await self._send_message(message)
        return future


class ClientPool:
    """One reusable client connection per peer endpoint, created on first use.

    A request that names the key it wants to reach (``expect``) first proves, once per
    connection and key, that the listener holds that key (hello.py); failures and refused
    connections are remembered and rate limited per endpoint (dialguard.py).

    ``connector``: what opens the TCP connections, an object with asyncio's
    ``create_connection(factory, host, port)``; None is the event loop (direct). A SOCKS5
    proxy (musig2_plugin.tor.socks_connector) sends every connection through Tor."""

    def __init__(self, config: Musig2Config, chain_id: bytes = b"", *,
                 connector: object | None = None) -> None:
        self._config = config
        self.connector = connector
        self._chain_id = chain_id
        self.guard = DialGuard(config)
        self._sessions: OrderedDict[Address, RPCSession] = OrderedDict()
        self._locks: dict[Address, asyncio.Lock] = {}
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._sessions)

    def _evict_idle(self, keep: Address) -> None:
        """Close the least recently used idle connections beyond the bound.

        WHY: endpoints come from peers (signed JOINs, requests, advertisements) and a
        long-running node would otherwise keep a socket (and a lock) per endpoint it ever
        talked to. A connection with a request in flight is never cut: that would look
        like a silent peer and trigger a failover.
        """
        excess = len(self._sessions) - self._config.max_outbound_connections
        for endpoint in list(self._sessions):
            if excess <= 0:
                break
            session = self._sessions[endpoint]
            if endpoint == keep or session.connection.pending_requests():
                continue
            del self._sessions[endpoint]
            excess -= 1
            asyncio.get_running_loop().create_task(self._close_quietly(session))
        for endpoint in [e for e, lock in self._locks.items()
                         if e not in self._sessions and not lock.locked()]:
            del self._locks[endpoint]

    @staticmethod
    async def _close_quietly(session: RPCSession) -> None:
        try:
            await asyncio.wait_for(session.close(force_after=0.5), 2)
        except Exception:
            pass

    async def _session(self, endpoint: Address, expect: bytes | None = None) -> "ClientSession":
        """The open connection to ``endpoint``, made (and the listener's key proved, when
        ``expect`` names it) if needed. Call with the endpoint's lock held."""
        session = self._sessions.get(endpoint)
        if session is not None and not session.is_closing():
            self._sessions.move_to_end(endpoint)
            if expect is not None and expect[-32:] not in session.verified_keys:
                self._guard_check(endpoint, expect, connecting=False)
                await self._hello(endpoint, session, expect)
            return session
        if self._closed:
            raise PeerUnreachable("transport stopped")
        if self.connector is None and str(endpoint[0]).lower().rstrip(".").endswith(".onion"):
            # RFC 7686: never resolve .onion names (a DNS query would leak whom we look for).
            raise PeerUnreachable(f"{endpoint[0]} is an onion service: reaching it needs a Tor "
                                  "proxy (Electrum's or the plugin's proxy setting)")
        self._guard_check(endpoint, expect)
        loop = asyncio.get_running_loop()
        factory = partial(RSTransport, partial(ClientSession, self._config), None,
                          SessionKind.CLIENT)
        try:
            _t, protocol = await asyncio.wait_for(
                (self.connector or loop).create_connection(factory, endpoint[0], endpoint[1]),
                self._config.connect_timeout)
        except (OSError, asyncio.TimeoutError, SOCKSError) as exc:
            self.guard.connect_failed(endpoint)
            raise PeerUnreachable(f"cannot connect to {endpoint[0]}:{endpoint[1]}: {exc!r}") \
                from None
        session = protocol.session
        session.sent_request_timeout = self._config.request_timeout
        session.verified_keys = set()
        self._sessions[endpoint] = session
        self._evict_idle(keep=endpoint)
        if expect is not None:
            await self._hello(endpoint, session, expect)
        return session

    def _guard_check(self, endpoint: Address, expect: bytes | None, *,
                     connecting: bool = True) -> None:
        try:
            self.guard.check(endpoint, expect, connecting=connecting)
        except EndpointIgnored as exc:
            raise PeerIgnored(str(exc)) from None

    async def _hello(self, endpoint: Address, session: RPCSession, expect: bytes) -> None:
        """Prove that the listener holds ``expect``; a failure is remembered by the guard."""
        nonce = new_nonce()
        try:
            try:
                answer = await asyncio.wait_for(
                    session.send_request(C.RPC_HELLO, [nonce.hex()]),
                    self._config.request_timeout + 1)
            except RPCError as exc:
                if exc.code == ERR_RATE:          # a busy node of ours: try again later
                    raise PeerUnreachable(f"{endpoint[0]}:{endpoint[1]} is busy") from None
                raise HandshakeFailed(f"hello refused: {exc.message}",
                                      speaks_protocol=False) from None
            except PeerUnreachable:
                raise
            except (TaskTimeout, asyncio.TimeoutError):
                # a silent listener: maybe a tarpit, maybe a node of ours under load. Not
                # remembered (a busy co-signer must not be shunned for an hour), but it spends
                # the endpoint's attempt budget, so a tarpit is dialed at a bounded rate.
                self.guard.connect_failed(endpoint)
                raise PeerUnreachable(f"no hello answer from {endpoint[0]}:{endpoint[1]}") \
                    from None
            except asyncio.CancelledError:
                if not session.is_closing():       # we are being cancelled, not the peer
                    raise
                raise HandshakeFailed("the listener hung up", speaks_protocol=False) from None
            except Exception as exc:              # timeout, lost connection, junk
                raise HandshakeFailed(f"no hello answer ({type(exc).__name__})",
                                      speaks_protocol=False) from None
            check_hello(answer, expect=expect, chain_id=self._chain_id, nonce=nonce)
        except HandshakeFailed as exc:
            self.guard.handshake_failed(endpoint, expect, str(exc),
                                        speaks_protocol=exc.speaks_protocol)
            if not exc.speaks_protocol:
                await self._drop(endpoint, session)
            raise PeerIgnored(f"{endpoint[0]}:{endpoint[1]} failed the handshake: {exc}") \
                from None
        except PeerUnreachable:
            await self._drop(endpoint, session)
            raise
        session.verified_keys.add(expect[-32:])

    async def request(self, endpoint: Address, method: str, args: list, *,
                      expect: bytes | None = None) -> object:
        """Send one request and wait for its answer; with ``expect`` (the key we mean to
        reach) the listener must have proved that key on this connection first.

        Sends to one peer reach the wire in the order ``request`` was called: the
        per-peer lock (asyncio locks are FIFO) covers connection set-up, the handshake
        *and* the write. Before, a send arriving while earlier ones still waited for the
        set-up lock found the fresh connection and overtook them (issue 14, item 1: a JOIN
        reached the wire 420 ms after a READY sealed 62 ms later). Only the write is
        serialised; the answers are awaited concurrently.
        """
        lock = self._locks.setdefault(endpoint, asyncio.Lock())
        session = None
        try:
            async with lock:
                session = await self._session(endpoint, expect)
                future = await asyncio.wait_for(session.write_request(method, args),
                                                self._config.request_timeout + 1)
            return await asyncio.wait_for(future, self._config.request_timeout + 1)
        except PeerUnreachable:
            raise
        except RPCError as exc:
            raise PeerRefused(str(exc.message)) from None
        except (TaskTimeout, asyncio.TimeoutError):
            await self._drop(endpoint, session)
            raise PeerUnreachable(f"no answer from {endpoint[0]}:{endpoint[1]}") from None
        except (OSError, ConnectionError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and \
                    (session is None or not session.is_closing()):
                raise
            await self._drop(endpoint, session)
            raise PeerUnreachable(f"connection to {endpoint[0]}:{endpoint[1]} lost") from None
        except Exception as exc:  # aiorpcx signals a lost connection in several ways
            await self._drop(endpoint, session)
            raise PeerUnreachable(f"connection to {endpoint[0]}:{endpoint[1]} failed: "
                                  f"{exc!r}") from None

    async def _drop(self, endpoint: Address, session: RPCSession | None) -> None:
        if session is None:
            return
        if self._sessions.get(endpoint) is session:
            del self._sessions[endpoint]
            lock = self._locks.get(endpoint)
            if lock is not None and not lock.locked():
                del self._locks[endpoint]
        try:
            await session.abort()
        except Exception:
            pass

    async def close(self) -> None:
        self._closed = True
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for s in sessions:
            try:
                await asyncio.wait_for(s.close(force_after=0.5), 2)
            except Exception:
                pass
