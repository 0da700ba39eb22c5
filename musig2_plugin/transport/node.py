"""The transport facade: one aiorpcx server, a client pool, and the admission pipeline.

Everything a peer sends passes the same pipeline before the session layer sees
it: strict decoding, blocked-key check, BIP-340 signature, clock skew, "is the
sender a participant of that session", then the replay window. Who pays for a
refusal (docs/security-review.md has the table):

* junk that does not verify (malformed, bad signature) proves nothing about any
  key: it is charged to the connection that delivered it, closed after
  ``block_after_invalid``;
* a correctly signed message whose content is wrong (bad body, not a participant,
  invalid contribution) is the signer's doing: charged to its key (blocked after
  as many);
* a correctly signed message refused for a reason anyone could cause (a replay,
  a stale copy, a blocked key) is dropped and counted against its signer's key
  for observation only (``replays``), never charged to the delivering connection:
  it may merely relay it (issue 12), and honest traffic must never close it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Awaitable, Callable, Collection

from aiorpcx import RPCError
from aiorpcx.rawsocket import RSTransport
from aiorpcx.session import SessionKind
from functools import partial

from ..foundation import constants as C
from ..foundation.config import Musig2Config
from ..foundation.chain import Chain, chain_id_of
from ..crypto import plain_pubkey
from .envelope import (AuthenticRefusal, BadSignature, CounterSource, Envelope,
                       EnvelopeError, MalformedEnvelope, MsgType, NotAParticipant, PeerBlocked,
                       ReplayedMessage, StaleMessage)
from .admission import PushRefused
from .hello import answer_hello
from .guards import PeerScore, ReplayGuard, TokenBucket, check_clock
from ..foundation.endpoint import Endpoint, Reach
from .peer import (ERR_RATE, ClientPool, PeerRefused, PeerUnreachable,
                   ServerSession, make_refusal)
from .relay import (RelayClientSession, RelayDisabled, RelayService, RelayUnreachable)

log = logging.getLogger(__name__)


class UnknownSession(AuthenticRefusal):
    """We hold no session under that id (yet): refused, but not the sender's fault."""


#: Refusals of correctly signed messages that prove nothing against the signing key: anyone
#: who once saw a message (a participant, anyone on the path: TCP is plain) can send it again
#: (replayed, or stale once old), and a blocked key's message only repeats its known record.
#: Blocking the key for them would let a third party get an honest key blocked, and closing
#: the delivering connection would let a replay cut honest traffic (or punish a relay):
#: they are dropped and counted per signer key (``Transport.replays``), nothing more.
NOT_PROOF = (PeerBlocked, ReplayedMessage, StaleMessage)

Membership = Callable[[bytes], "Collection[bytes] | None"]
EnvelopeHandler = Callable[[Envelope], Awaitable[None]]
#: Handles one pushed signing request: its bytes and the source address it came from.
RequestHandler = Callable[[bytes, str], Awaitable[None]]
#: Serves one admitted FETCH envelope: the chunk of the committed payload it asks for.
FetchHandler = Callable[[Envelope], bytes]
#: The participants of a request we created and still serve (None: no such request here).
FetchMembership = Callable[[bytes], "Collection[bytes] | None"]


class UnknownPayload(AuthenticRefusal):
    """We serve no payload under that request key: refused, but not the sender's fault."""


class BadFetch(AuthenticRefusal):
    """A signed FETCH asking for something we cannot serve (bad offset or chunk size)."""


class Transport:
    def __init__(self, seckey: bytes, config: Musig2Config, *, chain: "Chain | bytes",
                 membership: Membership,
                 on_envelope: EnvelopeHandler, on_request: RequestHandler,
                 fetch_membership: FetchMembership | None = None,
                 on_fetch: FetchHandler | None = None, connector: object | None = None) -> None:
        self._seckey = seckey
        self.pubkey = plain_pubkey(seckey)
        self.chain_id = chain_id_of(chain)   # every envelope we sign or admit is of this chain
        self.config = config
        self._membership = membership
        self._on_envelope = on_envelope
        self._on_request = on_request
        self._fetch_membership = fetch_membership
        self._on_fetch = on_fetch
        self._counter = CounterSource()
        self.replay = ReplayGuard(config.replay_window)
        self.scores = PeerScore(config.block_after_invalid, config.block_duration)
        self.pool = ClientPool(config, self.chain_id, connector=connector)
        #: Correctly signed messages refused as replays (or stale), by signer key: what a
        #: key is "counted" for without being blocked (bounded; oldest keys forgotten).
        self.replays: OrderedDict[bytes, int] = OrderedDict()
        self._junk_budget = TokenBucket(config.junk_rate_per_sec, config.junk_burst)
        self._hello_bucket = TokenBucket(config.hello_rate_per_sec, config.hello_burst)
        self._server: asyncio.base_events.Server | None = None
        self._inbound: set = set()
        #: Where our server listens (a direct endpoint; may be loopback or 0.0.0.0).
        self.endpoint: Endpoint | None = None
        #: Where strangers should connect (set by the owner from its settings and the chain's
        #: rules, see addresses.py, or learnt: a verified public address, a relay); None: we
        #: publish no endpoint (JOINs then carry none).
        self.public_endpoint: Endpoint | None = None
        #: The relay role (None: we do not relay); see ``enable_relay``.
        self.relay: RelayService | None = None
        #: Extra RPC methods served on our server (method -> handler(args, conn)), e.g. dial-back.
        self.extra_methods: dict[str, Callable[[list, object], Awaitable[object]]] = {}
        #: Called with every envelope that passed admission and was handled (tests record nonces).
        self.observers: list[Callable[[Envelope], None]] = []
        #: Called with every envelope we sign before it is sent.
        self.sent_observers: list[Callable[[Envelope], None]] = []
        #: Handshakes (hello.py) we answered: what fake advertisements naming us cost us.
        self.hellos_answered = 0
        #: Refusals seen, by exception class name (observability and tests).
        self.refusals: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Endpoint:
        loop = asyncio.get_running_loop()

        def session_factory(rs_transport):
            return ServerSession(self._dispatch, self.config, self._inbound, rs_transport)

        factory = partial(RSTransport, session_factory, None, SessionKind.SERVER)
        self._server = await loop.create_server(factory, host, port)
        sock_host, sock_port = self._server.sockets[0].getsockname()[:2]
        self.endpoint = Endpoint(sock_host, sock_port)
        return self.endpoint

    @property
    def seckey(self) -> bytes:
        return self._seckey

    def enable_relay(self) -> RelayService:
        """Relay for unreachable nodes (bounded by ``config.relay_*``); idempotent."""
        if self.relay is None:
            self.relay = RelayService(self.pubkey, self.config)
        return self.relay

    def published_endpoint(self) -> list | None:
        """Our endpoint as the JOIN message carries it (``Endpoint.to_json``: relay too)."""
        return None if self.public_endpoint is None else \
            Endpoint.of(self.public_endpoint).to_json()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for s in list(self._inbound):
                try:
                    await s.abort()
                except Exception:
                    pass
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
            self._server = None
        await self.pool.close()

    # -- sending ----------------------------------------------------------------------
    def seal(self, msg_type: MsgType, session_id: bytes, body: bytes) -> Envelope:
        env = Envelope.sign(self._seckey, chain=self.chain_id, msg_type=msg_type,
                            session_id=session_id, sender=self.pubkey,
                            counter=self._counter.next(session_id), body=body)
        for observer in list(self.sent_observers):
            observer(env)
        return env

    async def send(self, endpoint, env: Envelope, *, to: bytes | None = None) -> None:
        """Deliver one envelope to ``to`` (its key) at ``endpoint``, directly or through the
        relay the endpoint names; raises PeerUnreachable (RelayUnreachable) / PeerRefused.
        The listener must prove the key we mean to reach (hello.py): ``to`` on a direct
        connection, the relay's key on a relay."""
        ep = Endpoint.of(endpoint)
        if ep == self.endpoint or (to is not None and to == self.pubkey):
            await self.accept(env.encode())
            return
        await self.call(ep, C.RPC_MESSAGE, env.encode().hex(), to=to)

    async def push_request(self, endpoint, record: bytes, *, to: bytes | None = None) -> None:
        await self.call(Endpoint.of(endpoint), C.RPC_SIGNING_REQUEST, record.hex(), to=to)

    async def fetch_chunk(self, endpoint, env: Envelope, *, to: bytes | None = None) -> object:
        """Ask a request's creator for one chunk of its payload; the answer is unchecked."""
        return await self.call(Endpoint.of(endpoint), C.RPC_PAYLOAD, env.encode().hex(), to=to)

    async def call(self, ep: Endpoint, method: str, arg: str, *, to: bytes | None) -> object:
        """One request to a peer: on a direct connection, or wrapped for its relay."""
        if ep.kind is not Reach.RELAY:
            return await self.pool.request(ep.address, method, [arg], expect=to)
        if to is None:
            raise PeerUnreachable(f"{ep}: sending through a relay needs the recipient's key")
        try:
            # the relay proves its own key (the one its client signed into its endpoint)
            return await self.pool.request(ep.address, C.RPC_RELAY_SEND, [to.hex(), method, arg],
                                           expect=ep.relay_key)
        except PeerUnreachable as exc:
            raise RelayUnreachable(ep, to, str(exc)) from None
        except PeerRefused as exc:
            text = str(exc)
            if not text.startswith("client refused: "):
                # The relay itself refused (no reservation, budget, silent client): the target
                # is not reachable that way; say which relay.
                raise RelayUnreachable(ep, to, text) from None
            raise PeerRefused(text[len("client refused: "):]) from None

    # -- receiving --------------------------------------------------------------------
    async def dispatch(self, method: str, args: list, conn) -> object:
        """Serve one request from a connection (ours, or a relay's delivery down our link)."""
        return await self._dispatch(method, args, conn)

    async def _dispatch(self, method: str, args: list, conn: ServerSession) -> object:
        if method == C.RPC_HELLO and len(args) == 1:
            if not self._hello_bucket.take():
                raise RPCError(ERR_RATE, "handshake rate exceeded; try later")
            try:
                answer = answer_hello(self._seckey, self.chain_id, args[0])
                self.hellos_answered += 1
                return answer
            except ValueError:
                raise make_refusal("bad hello nonce", self._charge_junk(conn)) from None
        relayed = isinstance(conn, RelayClientSession)
        if method == C.RPC_RELAY_INFO and not relayed:
            # Lets an unreachable node find relays among the public nodes it knows (its DHT
            # contacts): the key goes into its "reachable through relay R" endpoint.
            return {"key": self.pubkey.hex(), "relay": self.relay is not None}
        if method in (C.RPC_RELAY_RESERVE, C.RPC_RELAY_SEND):
            if self.relay is None or relayed:
                raise RelayDisabled("this node does not relay").rpc_error()
            return await self.relay.handle(method, args, conn)
        if method in self.extra_methods and not relayed:
            return await self.extra_methods[method](args, conn)
        if method not in (C.RPC_MESSAGE, C.RPC_SIGNING_REQUEST, C.RPC_PAYLOAD) or len(args) != 1 \
                or not isinstance(args[0], str) \
                or len(args[0]) > 2 * self.config.max_message_bytes:
            raise make_refusal("unknown method or bad arguments", self._charge_junk(conn))
        try:
            data = bytes.fromhex(args[0])
        except ValueError:
            raise make_refusal("argument is not hex", self._charge_junk(conn)) from None
        if method == C.RPC_SIGNING_REQUEST:
            # Verified first, then budgeted by who signed it (transport/admission.py): the
            # coordinator's handler does both. Junk that does not verify is the connection's;
            # a verified push over its signer's budget is refused without any charge.
            try:
                await self._on_request(data, _source_of(conn))
            except PushRefused as exc:
                self._count(exc)
                raise RPCError(ERR_RATE, f"signing request refused: {exc}") from None
            except ValueError as exc:
                self._count(exc)
                disconnect = not getattr(exc, "authentic", False) and self._charge_junk(conn)
                raise make_refusal(f"signing request refused: {exc}", disconnect) from None
            return True
        if method == C.RPC_PAYLOAD:
            try:
                return self.serve_fetch(data).hex()
            except EnvelopeError as exc:
                disconnect = not exc.authentic and self._charge_junk(conn)
                raise make_refusal(f"{type(exc).__name__}: {exc}", disconnect) from None
        try:
            await self.accept(data)
        except EnvelopeError as exc:
            # Only junk that cannot be pinned on a key is charged to the connection.
            disconnect = not exc.authentic and self._charge_junk(conn)
            raise make_refusal(f"{type(exc).__name__}: {exc}", disconnect) from None
        return True

    def _charge_junk(self, conn: ServerSession) -> bool:
        """Charge traffic that did not verify to its connection; True: close it now.

        Unauthenticated traffic has a small node-wide budget of its own
        (``junk_rate_per_sec``/``junk_burst``) besides each connection's count: honest
        traffic verifies and never spends it, while an attacker who reconnects after
        every ``block_after_invalid`` junk messages finds, once the budget is spent, each
        new connection closed at its first junk message.
        """
        if isinstance(conn, RelayClientSession):
            # Junk a relay passes on may come from anyone: refused, counted on the link,
            # but the link (our only way in) is never closed for it.
            conn.charge_invalid()
            return False
        over_budget = not self._junk_budget.take()
        return conn.charge_invalid() or over_budget

    def serve_fetch(self, data: bytes) -> bytes:
        """Admit a FETCH envelope like any message (signature, clock, participant of the
        request, replay window), then hand it to the payload holder."""
        env = None
        try:
            env = Envelope.decode(data, chain=self.chain_id)
            if env.msg_type != MsgType.FETCH:
                raise MalformedEnvelope("only FETCH messages ask for payloads")
            if not env.verify():
                raise BadSignature("message signature does not verify")
            self.scores.check(env.sender)    # after the signature: a forgery is junk, not it
            check_clock(env, self.config)
            members = None if self._fetch_membership is None \
                else self._fetch_membership(env.session_id)
            if members is None or self._on_fetch is None:
                raise UnknownPayload("no payload served under that request here")
            if env.sender not in members:
                raise NotAParticipant("sender is not a participant of that request")
            self.replay.check_and_record(env.session_id, env.sender, env.counter)
            return self._on_fetch(env)
        except EnvelopeError as exc:
            self._count(exc, env)
            if exc.authentic and not isinstance(exc, (UnknownPayload,) + NOT_PROOF) \
                    and env is not None and env.sender != self.pubkey:
                if self.scores.charge(env.sender):
                    log.warning("blocking peer %s after repeated invalid fetches",
                                env.sender.hex())
            raise

    async def accept(self, data: bytes) -> Envelope:
        """The admission pipeline; raises an EnvelopeError subclass on refusal."""
        env = None
        try:
            env = Envelope.decode(data, chain=self.chain_id)
            if env.msg_type == MsgType.FETCH:
                raise MalformedEnvelope("FETCH messages travel only on the payload RPC")
            if not env.verify():
                raise BadSignature("message signature does not verify")
            self.scores.check(env.sender)    # after the signature: a forgery is junk, not it
            check_clock(env, self.config)
            members = self._membership(env.session_id)
            if members is None:
                raise UnknownSession("no such session here")
            if env.sender not in members:
                raise NotAParticipant("sender is not a participant of this session")
            self.replay.check_and_record(env.session_id, env.sender, env.counter)
            await self._on_envelope(env)
            for observer in list(self.observers):
                try:
                    observer(env)
                except Exception:
                    log.exception("message observer failed")
            return env
        except EnvelopeError as exc:
            self._count(exc, env)
            if exc.authentic and not isinstance(exc, (UnknownSession,) + NOT_PROOF) \
                    and env.sender != self.pubkey:   # our own stale local delivery: no charge
                if self.scores.charge(env.sender):
                    log.warning("blocking peer %s after repeated invalid messages",
                                env.sender.hex())
            raise
        except Exception as exc:  # a bug or an unforeseen input: refuse, never crash
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.exception("unexpected error handling a message")
            self._count(exc)
            raise MalformedEnvelope(f"message could not be processed: {exc!r}") from None

    def _count(self, exc: Exception, env: Envelope | None = None) -> None:
        name = type(exc).__name__
        self.refusals[name] = self.refusals.get(name, 0) + 1
        if env is not None and isinstance(exc, (ReplayedMessage, StaleMessage)):
            self.replays[env.sender] = self.replays.get(env.sender, 0) + 1
            self.replays.move_to_end(env.sender)
            while len(self.replays) > self.scores.max_keys:
                self.replays.popitem(last=False)


def _source_of(conn: ServerSession) -> str:
    """The address a connection comes from (the per-source push budget's name)."""
    try:
        return str(conn.remote_address().host)
    except Exception:   # no peer address (a closed socket): one shared name
        return "?"
