"""``Musig2Node``: the public API of the seed (advertise, find, announce, join, rounds, events).

One object per participant key. It owns the aiorpcx transport, the optional
DHT node, the session manager and the event hub, and it is the only layer that
knows about records: it turns a ``SigningRequest`` into one ``SessionSpec`` per
message (one MuSig2 session per transaction input).

Every method is a coroutine running on the node's loop; events are delivered
on the loop of whoever subscribed (see events.py).
"""
from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from ..foundation import constants as C
from ..foundation.config import DEFAULT_CONFIG, Musig2Config
from ..foundation.chain import Chain, chain_label
from ..crypto import KeyAggContext, key_sort, plain_pubkey, tagged_hash
from ..foundation.events import EventEmitter, Subscription
from .payload_crypto import PayloadError, decrypt_payload, encrypt_payload
from ..records import (Advertisement, Endpoint, PayloadRef, Reach, RecordError,
                       SigningRequest, TxType, Withdrawal, WrongChain, decode_record)
from ..session import (EndpointBook, Evidence, SessionAborted, SessionManager, SessionSpec,
                       SpecError, Tweak)
from ..transport import (DialbackService, EndpointNotPublic, PeerRefused, PeerUnreachable,
                         PushAdmission, Reachability, RelayClient, RelayService, Transport,
                         check_publishable, probe_reachability, publishable_endpoint)
from .errors import (CoordinatorError, NoPublicEndpoint, OversizedPayloadReply, PayloadFetchError,
                     PayloadMismatch, RequestRefused, WrongChainRequest)
from .fetch import PayloadStore, fetch_payload
from .payload import PayloadFormatError, RequestPayload

log = logging.getLogger(__name__)

Approval = Callable[[SigningRequest, RequestPayload], "bool | Awaitable[bool]"]


__all__ = ["Musig2Node", "KnownRequest", "Announcement", "PushOutcome", "PushStatus", "Evidence",
           "CoordinatorError",
           "RequestRefused", "ApprovalDenied",
           "NotStarted", "PayloadFetchError", "PayloadMismatch", "OversizedPayloadReply",
           "WrongChainRequest", "NoPublicEndpoint", "request_key"]


class ApprovalDenied(CoordinatorError):
    pass


class AdvertiseNotStored(CoordinatorError):
    """No DHT node accepted our advertisement (shard full, quotas, nobody answered).

    ``result`` is the ``PublishResult`` (``.refused``: {status: count}); the
    advertisement stays ours and the republish loop keeps trying."""

    def __init__(self, result) -> None:
        super().__init__(f"no node stored the advertisement: {dict(result.refused)}")
        self.result = result


class NotStarted(CoordinatorError):
    pass


def request_key(request: SigningRequest) -> bytes:
    """The id our sessions use for a request: binds its creator, its id and its messages.

    The record's own 32-byte id is chosen by its creator; hashing the creator and
    the messages in means two different requests can never share a session id, and
    hashing the chain in gives every chain its own session ids.
    """
    return _request_key(request.chain_id, request.creator, request.request_id, request.messages)


def _request_key(chain_id: bytes, creator: bytes, record_id: bytes,
                 messages: Sequence[bytes]) -> bytes:
    return tagged_hash(C.REQUEST_ID_TAG, chain_id + creator + record_id + b"".join(messages))


def _encryption_context(request_id: bytes, creator: bytes, messages: Sequence[bytes]) -> bytes:
    return request_id + creator + b"".join(messages)


class PushStatus(str, enum.Enum):
    """What became of one push (``PushOutcome.status``)."""
    DELIVERED = "delivered"
    REFUSED = "refused"            # the peer answered no (e.g. over its admission budget)
    UNREACHABLE = "unreachable"    # no connection, or no answer
    NO_ENDPOINT = "no-endpoint"    # we know no address for it

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PushOutcome:
    """What became of the push of a request to one participant.

    ``status``: "delivered", "refused" (the peer answered no, e.g. over its admission
    budget), "unreachable" (no connection or no answer) or "no-endpoint" (we know no
    address for it). Every participant not "delivered" learns of the request from the
    DHT instead (its node polls every ``request_watch_interval`` seconds).
    """
    participant: bytes
    status: PushStatus
    detail: str = ""


@dataclass(frozen=True)
class Announcement:
    """The result of ``Musig2Node.announce``: the signed record and what its pushes did."""
    record: SigningRequest
    pushes: tuple[PushOutcome, ...]
    stored_in_dht: bool

    @property
    def not_pushed(self) -> tuple[PushOutcome, ...]:
        return tuple(p for p in self.pushes if p.status != PushStatus.DELIVERED)


@dataclass
class KnownRequest:
    record: SigningRequest
    payload: RequestPayload
    specs: tuple[SessionSpec, ...]
    via: str

    @property
    def key(self) -> bytes:
        return self.specs[0].request_id


class Musig2Node:
    def __init__(self, seckey: bytes, *, chain: Chain, config: Musig2Config = DEFAULT_CONFIG,
                 approve: Approval | None = None, dht_config: Any = None,
                 peers_path: "str | os.PathLike | None" = None,
                 connector: object | None = None) -> None:
        """``chain``: the one chain this node signs for; its records, topics and envelopes
        carry it, and those of any other chain are refused (see foundation/chain.py).
        ``peers_path``: file of remembered DHT peers (kept across restarts, so a later start
        needs no bootstrap node; see dht/peers.py). ``connector``: opens our outbound TCP
        connections (a SOCKS5 proxy, musig2_plugin.tor); None: direct."""
        if not isinstance(chain, Chain):
            raise TypeError("chain must be a musig2_plugin.foundation.chain.Chain")
        self.chain = chain
        self._seckey = bytes(seckey)
        self.pubkey = plain_pubkey(self._seckey)
        self.config = config
        self.events = EventEmitter()
        self._approve = approve
        self.endpoints: dict[bytes, tuple[str, int]] = EndpointBook(config.max_known_endpoints)
        self.sessions = SessionManager(self._seckey, config, self.events, self.endpoints)
        #: Keys we created or joined a request with, or that the operator added: their
        #: pushes draw on budgets of their own (see transport/admission.py). Bounded.
        self._cosigners: OrderedDict[bytes, None] = OrderedDict()
        self.admission = PushAdmission(config, self.is_known_cosigner)
        #: Encrypted payloads of our own requests too large for a DHT record (served on fetch).
        self.payloads = PayloadStore(config.max_known_requests)
        self.transport = Transport(self._seckey, config, chain=chain,
                                   membership=self.sessions.membership,
                                   on_envelope=self.sessions.on_envelope,
                                   on_request=self._on_pushed_request,
                                   fetch_membership=self.payloads.members,
                                   on_fetch=self.payloads.serve, connector=connector)
        self.sessions.attach(self.transport)
        self._dht_config = dht_config
        self._peers_path = peers_path
        self.dht = None
        self.discovery = None
        self._own_records = None
        self._republish_task: asyncio.Task | None = None
        self.advertisement: Advertisement | None = None
        self.requests: OrderedDict[bytes, KnownRequest] = OrderedDict()
        #: Keys already announced by ``signer:discovered`` (bounded like the address book:
        #: advertisements cost their owners nothing; a forgotten key is announced again).
        self._discovered: OrderedDict[bytes, None] = OrderedDict()
        self._watchers: set[asyncio.Task] = set()
        self._started = False
        self._relays: RelayClient | None = None
        self._ad_params: dict | None = None
        #: Serves dial-backs for peers and answers their challenges (docs/network.md).
        self.dialback = DialbackService(self.transport)
        #: The last answer of ``learn_reachability`` (None: never asked).
        self.reachability: Reachability | None = None
        #: What this node dropped from what it found, by reason (e.g. "non_public_endpoint").
        self.stats: Counter = Counter()

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> Endpoint:
        """Where our server listens."""
        if self.transport.endpoint is None:
            raise NotStarted("node not started")
        return self.transport.endpoint

    @property
    def public_endpoint(self) -> Endpoint | None:
        """The endpoint we publish in advertisements, requests and JOINs (None: none yet):
        direct, or "through relay R" (``use_relays``). Kept by the transport, which puts it
        in JOINs."""
        return self.transport.public_endpoint

    @public_endpoint.setter
    def public_endpoint(self, value: "Endpoint | tuple[str, int] | None") -> None:
        self.transport.public_endpoint = None if value is None else Endpoint.of(value)

    @property
    def advertised_endpoint(self) -> Endpoint:
        """``public_endpoint``, for callers that need one (NoPublicEndpoint otherwise)."""
        if self.public_endpoint is None:
            raise NoPublicEndpoint(f"no public endpoint on {self.chain.name} (yet)")
        return self.public_endpoint

    def set_advertised_endpoint(self, endpoint: Endpoint) -> None:
        """Reach us there from now on (a learnt public address, or a relay). The chain's rule
        holds for learnt endpoints too: nothing loopback/private is published off regtest.
        Our own entry in the address book stays the listen endpoint (local delivery)."""
        endpoint = Endpoint.of(endpoint)
        check_publishable(endpoint.host, self.chain)
        self.public_endpoint = endpoint

    @property
    def running(self) -> bool:
        return self._started

    @property
    def dht_address(self) -> tuple[str, int] | None:
        return None if self.dht is None else self.dht.address

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, dht: bool = True,
                    dht_port: int | None = None,
                    bootstrap: Sequence[tuple[str, int]] = (),
                    public_host: str | None = None,
                    public_port: int | None = None, dht_client: bool = False,
                    watch_requests: bool = True) -> tuple[str, int]:
        """Listen for peers on ``host:port`` (TCP); with ``dht``, also run a DHT node
        (UDP, on ``dht_port``, by default the same port number) joined via ``bootstrap``
        (``dht_client``: in client mode, until ``reach_out`` proves us reachable) and, with
        ``watch_requests``, look in it every ``config.request_watch_interval`` seconds for
        requests addressed to us that no push brought.

        ``public_host``/``public_port``: the endpoint to publish (a port forward, a server's
        public address); without them the listen address is published when the chain allows
        it (see transport/addresses.py), else none (``public_endpoint`` is None). A public
        host the chain forbids raises ``EndpointNotPublic`` before anything listens."""
        if public_host:
            check_publishable(public_host, self.chain)
        endpoint = await self.transport.start(host, port)
        self.endpoints[self.pubkey] = endpoint
        try:
            self.public_endpoint = publishable_endpoint(self.chain, endpoint, public_host,
                                                        public_port)
        except EndpointNotPublic:
            await self.transport.stop()
            raise
        self.transport.public_endpoint = self.public_endpoint
        if dht:
            from ..dht import DhtNode, Discovery, OwnRecords, PeersFile

            def new_dht() -> DhtNode:
                peers = None if self._peers_path is None \
                    else PeersFile(self._peers_path, self.chain.name)
                return DhtNode(self._dht_config, chain=self.chain, peers_file=peers)
            self.dht = new_dht()
            try:
                await self.dht.start(host, endpoint[1] if dht_port is None else dht_port)
            except OSError:
                self.dht = new_dht()
                await self.dht.start(host, 0)
            self.discovery = Discovery(self.dht, emitter=self.events)
            self._own_records = OwnRecords(margin=2 * C.DHT_REPUBLISH_INTERVAL_S)
            if dht_client:
                # Not known to be reachable (yet): join without entering anyone's routing
                # table; reach_out() makes us a full DHT node once a dial-back verified.
                self.dht.set_client_mode(True)
            if bootstrap:
                await self.dht.bootstrap(list(bootstrap))
        self._started = True
        if self.dht is not None and watch_requests:
            # The fallback of every push that was refused or lost: without it a participant
            # the creator could not reach never hears of the request unless its own code polls.
            self.watch_signing_requests(self.config.request_watch_interval, immediately=False)
        return endpoint.address

    # ------------------------------------------------------------------ reachability
    def enable_relay(self) -> RelayService:
        """Relay for unreachable nodes (bounded by ``config.relay_*``; docs/network.md)."""
        return self.transport.enable_relay()

    async def use_relays(self, candidates: Sequence[Endpoint], *, want: int = 1) -> list[Endpoint]:
        """We cannot accept connections: keep reservations at ``want`` of these relays and
        advertise "reachable through relay R" from now on. A relay that fails its probe is
        replaced by the next candidate and our advertisement is re-published with it.
        Raises CoordinatorError when no candidate works."""
        self._require_started()
        if self._relays is not None:
            await self._relays.close()
        self._relays = RelayClient(self.transport, candidates, want=want,
                                   on_change=self._relays_changed)
        found = await self._relays.start()
        if not found:
            raise CoordinatorError("no relay among the candidates accepted a reservation")
        return found

    async def learn_reachability(self, peers: Sequence[Endpoint] | None = None, *,
                                 port: int | None = None) -> Reachability:
        """Ask peers (default: our DHT contacts, whose transport listens on the same port
        number) which address they see us from and to dial us back on ``port`` (default: our
        listen port, which a port forward must map 1:1). When a dial-back verified, advertise
        the public address from now on; otherwise keep the advertised endpoint (the caller
        turns to ``use_relays``)."""
        self._require_started()
        port = self.endpoint.port if port is None else port
        if peers is None:
            peers = [] if self.dht is None else [Endpoint(h, p)
                                                 for h, p in self.dht.contacts()[:8]]
        result = await probe_reachability(self.transport, peers, port)
        self.reachability = result
        direct = result.endpoint(port)
        if direct is not None:
            try:
                self.set_advertised_endpoint(direct)
            except EndpointNotPublic as exc:
                # Seen from a loopback/private address on a real chain (peers on our LAN):
                # strangers cannot use it, so we are not "directly reachable" for them.
                log.info("dial-back verified %s, but it cannot be published: %s", direct, exc)
                result.reachable = False
                result.refused = str(exc)
        return result

    async def find_relays(self, addresses: Sequence[tuple[str, int]]) -> list[Endpoint]:
        """Which of these transport addresses relay, as relay endpoints (their keys asked with
        ``m2.relay.info``). A wrong key only makes our reservation there fail."""
        async def ask(addr) -> Endpoint | None:
            try:
                info = await self.transport.pool.request((addr[0], int(addr[1])),
                                                         C.RPC_RELAY_INFO, [])
                if isinstance(info, dict) and info.get("relay") is True:
                    key = bytes.fromhex(str(info.get("key")))
                    if key != self.pubkey:
                        return Endpoint(addr[0], int(addr[1]), Reach.RELAY, key)
            except (PeerRefused, PeerUnreachable, ValueError, TypeError):
                pass
            return None
        found = await asyncio.gather(*(ask(a) for a in dict.fromkeys(map(tuple, addresses))))
        return [e for e in found if e is not None]

    async def reach_out(self, peers: Sequence[tuple[str, int]] = ()) -> dict:
        """Find out how peers can reach us and arrange it: dial-back through ``peers`` and
        our DHT contacts; if no dial-back verified, reserve at relays found among them.
        Returns a summary for the status command."""
        self._require_started()
        known = [tuple(p) for p in peers]
        if self.dht is not None:
            known += [tuple(c) for c in self.dht.contacts()]
        known = list(dict.fromkeys(known))[:16]
        reach = await self.learn_reachability([Endpoint(h, p) for h, p in known])
        if self.dht is not None:
            # Nobody could dial us back: nobody can send us datagrams either (same NAT).
            was_client = self.dht.client_mode
            self.dht.set_client_mode(not reach.reachable)
            if was_client and reach.reachable and known:
                await self.dht.bootstrap(known)     # a full node now: let peers know us
        if not reach.reachable:
            relays = await self.find_relays(known)
            if relays:
                await self.use_relays(relays)
        if self.advertisement is not None and self._ad_params is not None:
            await self.advertise_signer(**self._ad_params)   # peers must learn the new endpoint
        return self.reach_summary()

    def reach_summary(self) -> dict:
        """How we are reached (``musig2_plugin_reach``): path "direct" / "relay" (which) /
        "none", the endpoint we publish, the public IP peers saw, the relays in use."""
        pub = self.public_endpoint
        r = self.reachability
        return {"path": "none" if pub is None else pub.kind.name.lower(),   # direct/relay/onion
                "advertised": None if pub is None else pub.to_json(),
                "verified": r is not None and r.reachable,
                "public_ip": None if r is None else r.public_ip,
                "relays": [e.to_json() for e in self.relays_in_use],
                "dht_client_mode": self.dht is not None and self.dht.client_mode}

    @property
    def relays_in_use(self) -> list[Endpoint]:
        return [] if self._relays is None else self._relays.endpoints

    def _relays_changed(self, relays: list[Endpoint]) -> None:
        usable = []
        for relay in relays:
            try:
                check_publishable(relay.host, self.chain)
                usable.append(relay)
            except EndpointNotPublic as exc:
                log.info("relay %s cannot be published on %s: %s", relay, self.chain.name, exc)
        if not usable:
            log.warning("no working relay left: peers cannot reach us until one is found")
            return
        self.set_advertised_endpoint(usable[0])
        if self.advertisement is not None and self._ad_params is not None:
            task = asyncio.ensure_future(self.advertise_signer(**self._ad_params))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)

    async def stop(self) -> None:
        """Stop serving; every open session is dropped (its secret nonce destroyed)."""
        if self._relays is not None:
            await self._relays.close()
            self._relays = None
        for task in list(self._watchers):
            task.cancel()
        await self.sessions.drain(1.0)   # let a final signature we just sent reach everyone
        self.sessions.stop()
        if self.discovery is not None:
            self.discovery.stop_watching()
        if self.dht is not None:
            await self.dht.stop()
        await self.transport.stop()
        self._started = False

    async def __aenter__(self) -> "Musig2Node":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _usable_endpoint(self, host: str) -> bool:
        """Whether an endpoint a stranger signed may be dialed on our chain: on mainnet,
        testnet and signet a loopback/private/link-local one would aim us at our own machine
        or home network (transport/addresses.py); it is dropped and counted."""
        try:
            check_publishable(host, self.chain)
            return True
        except EndpointNotPublic:
            self.stats["non_public_endpoint"] += 1
            return False

    def network_status(self) -> dict:
        """How peers reach this node: its chain, where it listens, what it publishes."""
        listen = self.transport.endpoint
        return {"chain": self.chain.name,
                "listen": None if listen is None else list(listen),
                "endpoint": None if self.public_endpoint is None else list(self.public_endpoint),
                "reachable": self.reach_summary()["path"],
                "dht": None if self.dht is None else list(self.dht.address)}

    def on(self, event: str, callback: Callable[..., Any],
           loop: asyncio.AbstractEventLoop | None = None) -> Subscription:
        """Subscribe to one of the 14 seed events (or "*"); see docs/sessions.md for arguments."""
        return self.events.on(event, callback, loop)

    def set_public_endpoint(self, endpoint: tuple[str, int], kind: str = "onion") -> None:
        """Publish ``endpoint`` (our onion service) in advertisements, requests and JOINs from
        now on; the listener stays where it is. ``kind`` is what network_status reports."""
        self._require_started()
        check_publishable(str(endpoint[0]), self.chain)   # EndpointNotPublic, nothing changed
        self.public_endpoint = Endpoint(str(endpoint[0]), int(endpoint[1]),
                                        Reach.ONION if kind == "onion" else Reach.DIRECT)
        self._reach_kind = kind

    _reach_kind = "direct"

    def add_peer(self, pubkey: bytes, endpoint: "Endpoint | tuple[str, int]") -> None:
        """Make a peer reachable without the DHT (tests, or endpoints learnt out of band).
        A peer the operator adds is a known co-signer for push admission."""
        self.endpoints[bytes(pubkey)] = Endpoint.of(endpoint)
        self._note_cosigners([bytes(pubkey)])

    def _note_cosigners(self, keys: Sequence[bytes]) -> None:
        for key in keys:
            if key == self.pubkey:
                continue
            self._cosigners[key] = None
            self._cosigners.move_to_end(key)
        while len(self._cosigners) > self.config.max_known_cosigners:
            self._cosigners.popitem(last=False)

    def is_known_cosigner(self, key: bytes) -> bool:
        """Whether ``key`` created or joined a request with us (or was added by the
        operator): such a peer is never starved by strangers' pushes."""
        return key in self._cosigners

    def _require_started(self) -> None:
        if not self._started:
            raise NotStarted("call start() first")

    # ------------------------------------------------------------------ signers
    async def advertise_signer(self, *, tx_types=(TxType.SPEND,), min_amount_sat: int = 0,
                               max_amount_sat: int = C.MAX_MONEY_SAT, nickname: str = "",
                               description: str = "", fee_per_signature_sat: int = 0,
                               response_time_s: int = 60, reputation: int = 0,
                               trust_requirements: Sequence[str] = (),
                               ttl: float = C.ADVERTISEMENT_DEFAULT_TTL_S) -> Advertisement:
        """Publish a signed advertisement with our endpoint (kept alive until withdrawn)."""
        self._require_started()
        if self.public_endpoint is None:
            raise NoPublicEndpoint(
                f"no endpoint to advertise on {self.chain.name}: this node listens on "
                f"{self.endpoint[0]}, which strangers cannot reach; set a public host (and port), "
                "or let peers find out how to reach it (reach_out: dial-back, else a relay)")
        self._ad_params = dict(tx_types=tx_types, min_amount_sat=min_amount_sat,
                               max_amount_sat=max_amount_sat, nickname=nickname,
                               description=description,
                               fee_per_signature_sat=fee_per_signature_sat,
                               response_time_s=response_time_s, reputation=reputation,
                               trust_requirements=trust_requirements, ttl=ttl)
        ad = Advertisement.create(self._seckey, chain=self.chain, tx_types=tx_types,
                                  min_amount_sat=min_amount_sat,
                                  max_amount_sat=max_amount_sat, endpoint=self.public_endpoint,
                                  nickname=nickname, description=description,
                                  fee_per_signature_sat=fee_per_signature_sat,
                                  response_time_s=response_time_s, reputation=reputation,
                                  trust_requirements=trust_requirements, ttl=ttl)
        self.advertisement = ad
        if self.discovery is not None:
            self._own_records.put(self._seckey, ad, ttl)
            # emits signer:advertised (stored=, refused=) and, on refusals, signer:store-refused
            self.last_advertise = await self.discovery.advertise(ad)
            self._ensure_republishing()
            if int(self.last_advertise) == 0:
                raise AdvertiseNotStored(self.last_advertise)
        else:
            self.events.emit("signer:advertised", advertisement=ad, stored=0)
        return ad

    def _ensure_republishing(self) -> None:
        if self._republish_task is None:
            self._republish_task = self.dht.start_republishing(
                self._own_records.current, immediately=False)

    async def withdraw_advertisement(self) -> Withdrawal | None:
        """Replace our advertisement by a signed tombstone (higher seq)."""
        self._require_started()
        if self.advertisement is None:
            return None
        # Its seq must beat the advertisement's even within the same millisecond.
        withdrawal = Withdrawal.create(self._seckey, chain=self.chain,
                                       seq=self.advertisement.seq + 1,
                                       ttl=C.WITHDRAWAL_DEFAULT_TTL_S)
        self.advertisement = None
        if self.discovery is not None:
            self._own_records.put(self._seckey, withdrawal, C.WITHDRAWAL_DEFAULT_TTL_S)
            await self.discovery.withdraw(withdrawal)    # emits signer:withdrawn
        else:
            self.events.emit("signer:withdrawn", owner=self.pubkey, withdrawal=withdrawal)
        return withdrawal

    async def find_available_signers(self, tx_type: "TxType | str" = TxType.SPEND, *,
                                     amount: int | None = None, min_reputation: int | None = None,
                                     max_results: int | None = None,
                                     include_self: bool = False) -> list[Advertisement]:
        """Live advertisements from the DHT, best first; remembers their (signed) endpoints."""
        self._require_started()
        if self.discovery is None:
            raise NotStarted("the DHT is off on this node")
        ads = await self.discovery.find_signers(
            tx_type, amount=amount, min_reputation=min_reputation,
            max_results=None if max_results is None else max_results + 1)  # + ourselves
        out = []
        for ad in ads:
            if ad.owner == self.pubkey and not include_self:
                continue
            if not self._usable_endpoint(ad.endpoint.host):
                continue          # a LAN/loopback address on a real chain: never dialed, not listed
            self.endpoints[ad.owner] = ad.endpoint
            if ad.owner not in self._discovered:
                self._discovered[ad.owner] = None
                while len(self._discovered) > self.config.max_known_endpoints:
                    self._discovered.popitem(last=False)
                self.events.emit("signer:discovered", advertisement=ad, tx_type=TxType(tx_type))
            out.append(ad)
        return out if max_results is None else out[:max_results]

    @staticmethod
    def aggregate_key(participants: Sequence[bytes], *, tweak: "Tweak | str" = Tweak.TAPROOT,
                      merkle_root: bytes | None = None) -> KeyAggContext:
        """The key-aggregation context of a participant set (sorted), tweaked as a session
        would: ``.xonly()`` is the taproot output key, ``.internal_xonly()`` the inner key."""
        ctx = KeyAggContext.from_pubkeys(key_sort(list(participants)))
        return ctx.with_taproot_tweak(merkle_root) if Tweak.parse(tweak) is Tweak.TAPROOT else ctx

    # ------------------------------------------------------------------ requests
    def _specs(self, record: SigningRequest, payload: RequestPayload) -> tuple[SessionSpec, ...]:
        rid = request_key(record)
        return tuple(SessionSpec.build(rid, record.keys, msg, message_index=i, tweak=payload.tweak,
                                       merkle_root=payload.merkle_root,
                                       endpoints=payload.endpoints,
                                       max_signers=self.config.max_signers)
                     for i, msg in enumerate(record.messages))

    async def announce_signing_request(self, participants: Sequence[bytes],
                                       messages: Sequence[bytes], **kwargs) -> SigningRequest:
        """``announce`` for callers that only need the signed record (same arguments).
        Pushes that failed are still reported by ``signing-request:push-failed`` events."""
        return (await self.announce(participants, messages, **kwargs)).record

    async def announce(self, participants: Sequence[bytes], messages: Sequence[bytes], *,
                       app_data: bytes = b"", tx_type: "TxType | str" = TxType.SPEND,
                       metadata: str = "", tweak: "Tweak | str" = Tweak.TAPROOT,
                       merkle_root: bytes | None = None,
                       ttl: float = C.SIGNING_REQUEST_DEFAULT_TTL_S,
                       push: bool = True) -> Announcement:
        """Sign a request to ``participants`` for ``messages`` (32-byte sighashes), push it to
        every participant whose endpoint we know (unless ``push`` is False) and store it in
        the DHT for the others. Returns the record and each participant's push outcome; a
        push that did not land also fires ``signing-request:push-failed``."""
        self._require_started()
        keys = key_sort([bytes(k) for k in participants])
        if len(app_data) > self.config.max_payload_bytes:
            raise CoordinatorError("application data larger than max_payload_bytes")
        # Endpoint hints for the first coordinators of each session (see payload.py).
        rid = os.urandom(32)
        session_rid = _request_key(self.chain.id, self.pubkey, rid,
                                   [bytes(m) for m in messages])
        hints: dict[bytes, tuple[str, int]] = {}
        for i in range(len(messages)):
            probe = SessionSpec.build(session_rid, keys, bytes(messages[i]), message_index=i,
                                      tweak=tweak, merkle_root=merkle_root,
                                      max_signers=self.config.max_signers)
            for k in probe.order[:self.config.max_failovers + 1]:
                if k in self.endpoints:
                    hints[k] = self.endpoints[k]
        plain = RequestPayload(tweak, merkle_root, hints, bytes(app_data)).encode()
        blob = encrypt_payload(plain, keys, _encryption_context(rid, self.pubkey,
                                                                 [bytes(m) for m in messages]))
        ref = None
        if len(blob) > C.MAX_REQUEST_PAYLOAD_BYTES:
            # Too large for a DHT record: the record commits to it and we serve it on request.
            if len(blob) > C.MAX_FETCHED_PAYLOAD_BYTES:
                raise CoordinatorError("encrypted payload larger than MAX_FETCHED_PAYLOAD_BYTES")
            ref = PayloadRef.of(blob)
        record = SigningRequest.create(self._seckey, chain=self.chain, keys=keys,
                                       messages=[bytes(m) for m in messages],
                                       payload=b"" if ref else blob, payload_ref=ref,
                                       tx_type=tx_type, metadata=metadata,
                                       request_id=rid, endpoint=self.public_endpoint,
                                       ttl=ttl)
        if ref is not None:
            self.payloads.put(request_key(record), keys, blob)
        known = None
        if self.pubkey in keys:
            known = self._remember(record, "created")
        self.events.emit("signing-request:created", request_id=request_key(record),
                         request=record, participants=tuple(keys))
        self._note_cosigners(keys)
        data = record.encode()
        others = [k for k in keys if k != self.pubkey]
        pushes: tuple[PushOutcome, ...] = ()
        if push:
            pushes = tuple(await asyncio.gather(*(self._push(k, data) for k in others)))
        stored = False
        if self.dht is not None:
            try:
                await self.dht.publish(record)
                stored = True
            except Exception:
                log.exception("publishing the signing request to the DHT failed")
        for outcome in pushes:
            if outcome.status != PushStatus.DELIVERED:
                self.events.emit("signing-request:push-failed", request_id=request_key(record),
                                 participant=outcome.participant, status=outcome.status,
                                 detail=outcome.detail, in_dht=stored)
        if known is None:
            log.info("announced a request we are not a participant of")
        return Announcement(record, pushes, stored)

    async def _push(self, key: bytes, data: bytes) -> PushOutcome:
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            return PushOutcome(key, PushStatus.NO_ENDPOINT)
        try:
            await self.transport.push_request(endpoint, data, to=key)
            return PushOutcome(key, PushStatus.DELIVERED)
        except PeerRefused as exc:
            log.warning("push of a signing request to %s refused: %s", endpoint, exc)
            return PushOutcome(key, PushStatus.REFUSED, str(exc))
        except PeerUnreachable as exc:
            log.warning("push of a signing request to %s failed: %s", endpoint, exc)
            return PushOutcome(key, PushStatus.UNREACHABLE, str(exc))

    def _check_addressed(self, record: SigningRequest) -> None:
        if record.chain_id != self.chain.id:
            raise WrongChainRequest(f"signing request of chain {chain_label(record.chain_id)}, "
                                    f"this node signs for {self.chain.name}")
        if not record.addresses(self.pubkey) or self.pubkey not in record.keys:
            raise RequestRefused("signing request is not addressed to us")
        if len(record.keys) > self.config.max_signers:
            raise RequestRefused("too many participants")

    def _remember(self, record: SigningRequest, via: str,
                  blob: bytes | None = None) -> KnownRequest:
        """Check a request is for us and readable; register its sessions (idempotent).

        ``blob``: the encrypted payload when the record only commits to it (already
        checked against the commitment by whoever fetched it)."""
        self._check_addressed(record)
        rid = request_key(record)
        known = self.requests.get(rid)
        if known is not None:
            return known
        if record.payload_ref is None:
            blob = record.payload
        else:
            if blob is None:
                blob = self.payloads.get(rid) if record.creator == self.pubkey else None
            if blob is None:
                raise RequestRefused("its payload is held by the creator and not fetched yet")
            if not record.payload_ref.matches(blob):
                raise PayloadMismatch("payload does not match the request's signed commitment")
        try:
            plain = decrypt_payload(blob, self._seckey, key_sort(list(record.keys)),
                                    _encryption_context(record.request_id, record.creator,
                                                        record.messages))
            payload = RequestPayload.decode(plain, max_app=self.config.max_payload_bytes)
            specs = self._specs(record, payload)
        except (PayloadError, PayloadFormatError, SpecError) as exc:
            raise RequestRefused(f"unreadable signing request: {exc}") from None
        except Exception as exc:  # e.g. an invalid participant key in the aggregation
            raise RequestRefused(f"unusable signing request: {exc!r}") from None
        held = [self.sessions.specs.get(s.session_id) for s in specs]
        if any(h is not None and not h.signs_the_same(s) for h, s in zip(held, specs)):
            # Same creator and request id, other tweak: refuse it whole, before registering
            # anything (a half-registered request is state we would have to unwind).
            raise RequestRefused("conflicts with a signing request we already hold")
        for spec in specs:
            self.sessions.register(spec)
        if record.endpoint is not None and self._usable_endpoint(record.endpoint.host):
            self.endpoints.setdefault(record.creator, record.endpoint)
        known = KnownRequest(record, payload, specs, via)
        self.requests[rid] = known
        while len(self.requests) > self.config.max_known_requests:
            self.requests.popitem(last=False)
        return known

    def _receive(self, record: SigningRequest, via: str,
                 blob: bytes | None = None) -> KnownRequest:
        is_new = request_key(record) not in self.requests
        known = self._remember(record, via, blob)
        if is_new:
            self.events.emit("signing-request:received", request_id=known.key, request=record,
                             creator=record.creator, participants=tuple(record.keys), via=via,
                             session_ids=tuple(s.session_id for s in known.specs))
        return known

    async def _on_pushed_request(self, data: bytes, source: str) -> None:
        """Verify first (decode + signature: cheap and size-bounded), then spend the signer's
        push budget, then do the expensive part (ECDH, session set-up, maybe a fetch).
        Unverifiable junk is refused unattributed (the transport charges its connection);
        refusals after the signature held carry ``authentic`` (never the connection's)."""
        try:
            record = decode_record(data, chain=self.chain)
        except WrongChain as exc:
            raise WrongChainRequest(str(exc)) from None
        except RecordError as exc:
            raise RequestRefused(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(record, SigningRequest):
            refused = RequestRefused("not a signing request")
            refused.authentic = True
            raise refused
        self.admission.admit(record.creator, source)        # PushRefused: over budget
        try:
            await self._receive_fetching(record, "push")
        except RequestRefused as exc:
            exc.authentic = True
            raise

    async def _receive_fetching(self, record: SigningRequest, via: str) -> KnownRequest:
        """``_receive``, first fetching a committed payload from the creator if needed."""
        rid = request_key(record)
        if record.payload_ref is None or rid in self.requests or record.creator == self.pubkey:
            return self._receive(record, via)
        self._check_addressed(record)      # never fetch for requests that are not ours
        blob = await fetch_payload(self.transport, record.endpoint, rid, record.payload_ref,
                                   timeout=C.PAYLOAD_FETCH_TIMEOUT_S, creator=record.creator)
        return self._receive(record, via, blob)

    async def find_signing_requests_for_me(self) -> list[SigningRequest]:
        """Requests addressed to us stored in the DHT (for when we were offline)."""
        self._require_started()
        if self.discovery is None:
            return [k.record for k in self.requests.values()]
        records = await self.discovery.find_requests_for(self.pubkey)
        # Concurrently: a record whose creator is slow to serve its payload must not hold up
        # the others (each fetch is bounded by PAYLOAD_FETCH_TIMEOUT_S).
        results = await asyncio.gather(*(self._receive_fetching(r, "dht") for r in records),
                                       return_exceptions=True)
        found = []
        for result in results:
            if isinstance(result, RequestRefused):
                log.info("ignoring a request from the DHT: %s", result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.append(result.record)
        return found

    def watch_signing_requests(self, interval: float = 10.0, *,
                               immediately: bool = True) -> asyncio.Task:
        """Background listener: poll the DHT for requests addressed to us every ``interval``
        seconds; each new one fires ``signing-request:received`` (``via="dht"``). Pushed
        requests fire it immediately anyway. Cancel the task (or stop the node) to end it."""
        self._require_started()

        async def loop() -> None:
            if not immediately:
                await asyncio.sleep(interval)
            while True:
                try:
                    await self.find_signing_requests_for_me()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("polling the DHT for signing requests failed; retrying")
                await asyncio.sleep(interval)

        task = asyncio.ensure_future(loop())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return task

    def watch_signers(self, tx_type: "TxType | str" = TxType.SPEND, interval: float = 10.0,
                      callback: Callable[[Advertisement], Any] | None = None) -> asyncio.Task:
        """Poll the DHT for new advertisements (``signer:discovered``) and withdrawals
        (``signer:withdrawn``); their endpoints are remembered for pushes and sessions."""
        self._require_started()
        if self.discovery is None:
            raise NotStarted("the DHT is off on this node")

        def remember(ad: Advertisement) -> None:
            if not self._usable_endpoint(ad.endpoint.host):
                return
            self.endpoints[ad.owner] = ad.endpoint
            if callback is not None:
                callback(ad)

        return self.discovery.watch_signers(tx_type, remember, interval)

    def known_request(self, request: "SigningRequest | bytes") -> KnownRequest:
        rid = request_key(request) if isinstance(request, SigningRequest) else bytes(request)
        known = self.requests.get(rid)
        if known is None and isinstance(request, SigningRequest):
            known = self._receive(request, "api")
        if known is None:
            raise RequestRefused("unknown signing request")
        return known

    # ------------------------------------------------------------------ joining and rounds
    async def join_signing_request(self, request: "SigningRequest | bytes", *, auto: bool = True,
                                   rejoin: bool = False) -> tuple[bytes, ...]:
        """Approve (callback) and join every session of the request; returns the session ids.

        ``auto``: run both rounds as soon as possible (else call start_round1/2).
        ``rejoin``: we restarted after having joined; our old nonces are gone, so
        the sessions restart round 1 with fresh ones.
        """
        self._require_started()
        if isinstance(request, SigningRequest) and request_key(request) not in self.requests:
            await self._receive_fetching(request, "api")
        known = self.known_request(request)
        if self._approve is not None:
            verdict = self._approve(known.record, known.payload)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is not True:
                raise ApprovalDenied("the approval callback refused this signing request")
        for spec in known.specs:      # all-or-nothing: refuse before joining any of them
            held = self.sessions.get(spec.session_id)
            if held is not None and held.closed:
                raise SessionAborted(held.abort_reason or "session is closed", held.culprits)
            if held is not None and not held.spec.signs_the_same(spec):
                raise RequestRefused("a session here signs something else under this id")
        if not self.sessions.room_for(known.specs):
            raise CoordinatorError(
                f"joining would exceed max_sessions ({self.config.max_sessions}); "
                "finish or abort other sessions first")
        self._note_cosigners(known.record.keys)
        ids = []
        for spec in known.specs:
            session = self.sessions.session_for(spec, auto=auto)
            session.join(rejoin=rejoin)
            ids.append(spec.session_id)
        self.events.emit("signing-request:joined", request_id=known.key,
                         session_ids=tuple(ids), participant=self.pubkey)
        return tuple(ids)

    def _session(self, session_id: bytes):
        session = self.sessions.get(bytes(session_id))
        if session is None:
            raise CoordinatorError("no such session here (join the request first)")
        return session

    async def start_round1(self, session_id: bytes, timeout: float | None = None) -> bytes:
        """Send our public nonce (once the session is ready); returns the checked aggnonce."""
        return await asyncio.wait_for(self._session(session_id).round1(), timeout)

    async def start_round2(self, session_id: bytes, timeout: float | None = None) -> bytes:
        """Send our partial signature; returns the final signature once verified."""
        return await asyncio.wait_for(self._session(session_id).round2(), timeout)

    async def get_final_signature(self, session_id: bytes, timeout: float | None = None) -> bytes:
        """The BIP-340 signature (64 bytes), verified under the session's aggregate key."""
        return await asyncio.wait_for(self._session(session_id).wait_final(), timeout)
