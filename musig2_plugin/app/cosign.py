"""One wallet's co-signing service: the coordinator node wired to the wallet bridge.

The coordinator (musig2_plugin.coordinator.Musig2Node) knows keys, records and
sessions; it does not know transactions. This module is where a signing request
becomes a *transaction* the user approves:

* a request's encrypted application data carries the PSBT and which input each
  message (session) signs: ``{"v": 1, "psbt": <base64>, "inputs": [i0, i1, ...]}``;
* on receipt, the co-signer re-derives everything from the PSBT (``review_spend``:
  amounts and scripts of every input present, each message = that input's BIP-341
  sighash, each input's participant keys = the request's keys, aggregate = the spent
  script) and keeps the request *pending* with the review, or *refused* with the
  typed reason; nothing is signed;
* the user approves (command or dialog); the node's approval callback checks
  again (the review is recomputed, and the approval must be for this exact request)
  before the node joins; both rounds then run in the session layer;
* each finalized session's signature is verified under Q and placed in its input's
  ``tap_key_sig``; when all inputs have one, the transaction is finalized, and
  the requester broadcasts it through the wallet's own network path.
"""
from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from electrum.transaction import PartialTransaction

from ..foundation.chain import Chain, chain_for_network
from ..foundation.constants import (AUTO_REACH_WAIT_S, MAX_TRACKED_REQUESTS,
                                    REQUEST_POLL_INTERVAL_S)
from ..coordinator import ApprovalDenied, Musig2Node, RequestRefused, Tweak, TxType, request_key
from ..wallet_bridge import (BridgeError, ParticipantMismatch, SpendReview, attach_signature,
                            broadcast, finalize, musig_inputs, parse_psbt, psbt_base64,
                            review_spend)
from .reach import ReachNotSettled
from .review import OwnSpend, prepare_own_spend

log = logging.getLogger(__name__)
APP_DATA_VERSION = 1

class RequestStatus(enum.StrEnum):
    """Where a signing request stands for this wallet (``RequestState.status``).

    A ``StrEnum``: the JSON the commands answer and the text the dialogs show stay the words
    below, while code compares members, never string literals.
    """
    PENDING = "pending"          # received, reviewed, waiting for the user
    REFUSED = "refused"          # failed the review, or rejected by the user
    APPROVED = "approved"        # joined: the rounds run by themselves
    SIGNED = "signed"            # every input of the request has its signature
    BROADCAST = "broadcast"      # the final transaction was sent
    FAILED = "failed"            # aborted, cancelled, or the send failed


class RequestRole(enum.StrEnum):
    """Whether this wallet created the request or was asked to co-sign it."""
    CREATOR = "creator"
    COSIGNER = "cosigner"


class RequestEvent(enum.StrEnum):
    """What the service tells its listeners (``notify(event, state)``): the GUI, the plugin's
    observed-reputation record. The progress events double as ``RequestState.phases`` keys."""
    CREATED = "created"
    RECEIVED = "received"
    APPROVED = "approved"
    REJECTED = "rejected"
    REJOINED = "rejoined"
    JOINED = "joined"            # a phase only: our sessions were joined
    READY = "ready"
    ROUND1 = "round1"
    ROUND2 = "round2"
    SIGNED = "signed"
    BROADCASTING = "broadcasting"  # a phase only: the send started
    BROADCAST = "broadcast"
    FAILED = "failed"


PENDING, REFUSED, APPROVED, SIGNED, BROADCAST, FAILED = (
    RequestStatus.PENDING, RequestStatus.REFUSED, RequestStatus.APPROVED, RequestStatus.SIGNED,
    RequestStatus.BROADCAST, RequestStatus.FAILED)


def electrum_chain() -> Chain:
    """The chain of the network Electrum runs on (``electrum.constants.net``): the core
    layers never import Electrum, so the edge hands them this."""
    from electrum import constants
    return chain_for_network(constants.net.NET_NAME, constants.net.GENESIS)


class RequestPayloadError(BridgeError):
    """A request whose application data is not a PSBT with an input list we can check."""


def encode_app_data(tx: PartialTransaction, inputs: Sequence[int]) -> bytes:
    return json.dumps({"v": APP_DATA_VERSION, "psbt": psbt_base64(tx),
                       "inputs": list(inputs)}, separators=(",", ":")).encode()


def decode_app_data(data: bytes) -> tuple[PartialTransaction, list[int]]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestPayloadError("request data is not JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != APP_DATA_VERSION:
        raise RequestPayloadError("unknown request data version")
    inputs = obj.get("inputs")
    if (not isinstance(inputs, list) or not inputs
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in inputs)
            or len(set(inputs)) != len(inputs)):
        raise RequestPayloadError("request data must list distinct input indexes")
    if not isinstance(obj.get("psbt"), str):
        raise RequestPayloadError("request data carries no PSBT")
    return parse_psbt(obj["psbt"]), inputs


def review_request(record, payload, me: bytes) -> tuple[PartialTransaction, list[int], SpendReview]:
    """Everything a co-signer checks before a request may even be shown as approvable."""
    if payload.tweak != Tweak.TAPROOT:
        raise RequestPayloadError("only taproot key-path requests are supported")
    tx, inputs = decode_app_data(payload.app_data)
    messages = list(record.messages)
    if len(inputs) != len(messages):
        raise RequestPayloadError("the request has a different number of messages and inputs")
    review = review_spend(tx, me, dict(zip(inputs, messages)))
    musig = musig_inputs(tx)
    keys = tuple(sorted(bytes(k) for k in record.keys))
    for i in inputs:
        if tuple(sorted(musig[i].participants)) != keys:
            raise ParticipantMismatch(i, "the request's participants are not this input's keys")
        if musig[i].merkle_root != payload.merkle_root:
            # The sessions sign under the payload's tweak: it must be the input's script tree.
            raise ParticipantMismatch(i, "the request's taproot merkle root is not this "
                                         "input's script tree")
    return tx, inputs, review


@dataclass
class RequestState:
    key: bytes
    record: Any
    role: RequestRole
    status: RequestStatus
    tx: Optional[PartialTransaction] = None
    inputs: list[int] = field(default_factory=list)
    review: Optional[SpendReview] = None
    error: Optional[str] = None
    approved: bool = False
    session_ids: tuple[bytes, ...] = ()
    signatures: dict[int, bytes] = field(default_factory=dict)
    txid: Optional[str] = None
    broadcast_txid: Optional[str] = None
    final_tx: Optional[str] = None
    created: float = field(default_factory=time.time)
    phases: dict[RequestEvent, float] = field(default_factory=dict)
    musig: Optional[dict] = None
    payload: Any = None                # the decrypted payload the review was computed from
    culprits: tuple[bytes, ...] = ()
    #: Culprit -> kind of our own evidence against it ("invalid" or "timeout").
    evidence: dict[bytes, str] = field(default_factory=dict)
    # Network sends of the final transaction: one per request, however many callers ask
    # (the auto-broadcast and the broadcast_request command may overlap).
    broadcasts: int = 0
    _broadcasting: Optional["asyncio.Future"] = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.key.hex(), "role": self.role.value, "status": self.status.value,
                "creator": self.record.creator.hex(),
                "participants": [k.hex() for k in self.record.keys],
                "inputs": self.inputs, "txid": self.txid, "error": self.error,
                "review": self.review.to_json() if self.review else None,
                "session_ids": [s.hex() for s in self.session_ids],
                "signed_inputs": sorted(self.signatures), "final_tx": self.final_tx,
                "broadcast_txid": self.broadcast_txid, "broadcasts": self.broadcasts,
                "phases": {str(k): round(v - self.created, 3) for k, v in self.phases.items()}}


class WalletCosigner:
    """The co-signing node of one wallet (its participant key), and its requests."""

    def __init__(self, wallet, seckey: bytes, *, config=None, chain: Optional[Chain] = None,
                 peers_path=None,
                 notify: Optional[Callable[[RequestEvent, "RequestState"], None]] = None,
                 auto_broadcast: bool = True, approvals: Optional[dict] = None,
                 connector: object = None):
        """``approvals``: persistent map (plugin storage) of request ids the user approved; after
        a restart such a request is rejoined without asking again (its nonces are fresh: the
        session restarts round 1). Public data only; bounded. ``chain``: by default the chain
        of Electrum's network (a testnet wallet signs and looks for testnet signers only)."""
        kwargs = {} if config is None else {"config": config}
        if connector is not None:   # a SOCKS5 proxy: every outbound session goes through it
            kwargs["connector"] = connector
        self.wallet = wallet
        self.node = Musig2Node(seckey, chain=chain or electrum_chain(), approve=self._approve,
                               peers_path=peers_path, **kwargs)
        self.pubkey = self.node.pubkey
        self.requests: dict[bytes, RequestState] = {}
        self.notify = notify
        self.auto_broadcast = auto_broadcast
        self._subs = []
        self._poller: Optional[asyncio.Task] = None
        self.approvals = approvals if approvals is not None else {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0, *, dht: bool = True,
                    bootstrap: Sequence[tuple[str, int]] = (),
                    public_host: Optional[str] = None, public_port: Optional[int] = None,
                    poll_interval: float = REQUEST_POLL_INTERVAL_S,
                    dht_client: bool = False, reach: bool = False) -> tuple[str, int]:
        """Listen and join; with ``reach``, find out in the background how peers reach us
        (the ``reach`` command's step: dial-back, else a relay) so start does not wait for
        it; ``reach_settled`` is where an advertise waits (docs/network.md)."""
        # The node's own DHT watcher is started below with our interval (one watcher, not two).
        endpoint = await self.node.start(host, port, dht=dht, bootstrap=bootstrap,
                                         public_host=public_host, public_port=public_port,
                                         watch_requests=False, dht_client=dht_client)
        loop = asyncio.get_running_loop()
        self._subs = [self.node.on("signing-request:received", self._on_received, loop),
                      self.node.on("signature:finalized", self._on_finalized, loop),
                      self.node.on("session:aborted", self._on_aborted, loop),
                      self.node.on("session:ready", self._on_phase(RequestEvent.READY), loop),
                      self.node.on("round1:complete", self._on_phase(RequestEvent.ROUND1), loop),
                      self.node.on("round2:complete", self._on_phase(RequestEvent.ROUND2), loop)]
        if dht:
            # The background listener's second ear (requests stored in the DHT: pushes that
            # could not reach us, or sent while we were offline) is the coordinator's own
            # watcher; the node cancels it when it stops.
            self._poller = self.node.watch_signing_requests(poll_interval, immediately=False)
        self._running = True
        if reach:
            self.reach_error = None
            self._reach_task = asyncio.ensure_future(self._auto_reach(list(bootstrap)))
        return endpoint

    _reach_task: Optional[asyncio.Task] = None
    #: Why node start's background reachability step failed (None: it did not, or never ran).
    reach_error: Optional[str] = None

    async def _auto_reach(self, peers: list[tuple[str, int]]) -> None:
        try:
            await self.node.reach_out(peers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:     # the node keeps running; advertise says why it cannot
            self.reach_error = f"{type(exc).__name__}: {exc}"
            log.warning("finding out how peers reach this node failed: %s", self.reach_error)

    @property
    def reach_pending(self) -> bool:
        """Node start's background reachability step is still running."""
        return self._reach_task is not None and not self._reach_task.done()

    async def reach_settled(self, timeout: float = AUTO_REACH_WAIT_S) -> None:
        """Wait for node start's background reachability step (if any) to finish, so that
        what we publish next names how peers really reach us. ReachNotSettled after
        ``timeout``; the step itself keeps running (a cancelled caller does not cancel it)."""
        task = self._reach_task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            raise ReachNotSettled(f"still finding out how peers reach this node after "
                                  f"{timeout:g} s (dial-back, relays); try again later") from None

    async def attach_onion(self, control) -> tuple[str, int]:
        """Publish an ephemeral onion service for our listener (``control``: a
        musig2_plugin.tor.ControlSettings) and advertise its address from now on."""
        from ..tor import OnionService
        self.onion = await OnionService.create(control, self.node.endpoint)
        self.node.set_public_endpoint(self.onion.endpoint)
        return self.onion.endpoint

    onion = None   # the OnionService, when reachable as one

    async def stop(self) -> None:
        if self.onion is not None:
            await self.onion.close()
            self.onion = None
        self._running = False
        if self._reach_task is not None:
            self._reach_task.cancel()
            await asyncio.gather(self._reach_task, return_exceptions=True)
            self._reach_task = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        await self.node.stop()

    async def reach(self, peers) -> dict[str, Any]:
        """How peers reach this node, arranged (dial-back, else a relay; docs/network.md).
        Node start's background run of the same step finishes first (never two at once)."""
        await self.reach_settled()
        return await self.node.reach_out(list(peers))

    def is_running(self) -> bool:
        return self._running

    _running = False     # set by start() once the node listens, cleared by stop()

    def status(self) -> dict[str, Any]:
        return {"pubkey": self.pubkey.hex(), "running": self.is_running(),
                "endpoint": list(self.node.endpoint) if self.is_running() else None,
                "dht": list(self.node.dht_address) if self.node.dht_address else None,
                "advertising": self.node.advertisement is not None,
                "reachability": "onion" if self.onion is not None else "direct",
                "public_endpoint": list(self.node.public_endpoint)
                if self.is_running() and self.node.public_endpoint else None,
                "requests": len(self.requests),
                # how strangers reach this node: chain, listen address, published endpoint
                "network": self.node.network_status() if self.is_running() else None,
                # how peers reach us (reach command): direct / relay (which) / none
                "reach": self.node.reach_summary() if self.is_running() else None,
                # node start's background reach step: still running / why it failed
                "reach_pending": self.reach_pending, "reach_error": self.reach_error}

    def _emit(self, what: RequestEvent, state: RequestState) -> None:
        if self.notify is not None:
            try:
                self.notify(what, state)
            except Exception:
                log.exception("request notification callback failed")

    # ------------------------------------------------------------------ requests
    async def request_spend(self, tx: PartialTransaction, *, metadata: str = "",
                            prepared: Optional[OwnSpend] = None) -> RequestState:
        """Announce a spend of MuSig2 coins to their participants and join it ourselves.

        ``prepared``: the sighashes and review the caller already computed for this wallet's key
        (``prepare_own_spend``), so a command that answers them does not compute them twice.
        """
        own = prepared if prepared is not None else prepare_own_spend(tx, self.pubkey)
        if len(own.key_sets) != 1:
            raise BridgeError("one request signs inputs of one participant set; "
                              "split the spend or use the PSBT commands")
        msgs = own.sighashes
        inputs = list(own.inputs)
        participants, merkle_root = next(iter(own.key_sets))
        record = await self.node.announce_signing_request(
            participants, [msgs[i] for i in inputs], app_data=encode_app_data(tx, inputs),
            tx_type=TxType.SPEND, metadata=metadata[:200], merkle_root=merkle_root)
        key = request_key(record)
        state = RequestState(key=key, record=record, role=RequestRole.CREATOR, status=APPROVED, tx=tx,
                             inputs=inputs, txid=tx.txid(), approved=True)
        state.review = own.review
        # What our own join is approved against (_approve): the payload we just encrypted.
        state.payload = self.node.known_request(key).payload
        self.requests[key] = state
        state.session_ids = await self.node.join_signing_request(record, auto=True)
        state.phases[RequestEvent.JOINED] = time.time()
        self._emit(RequestEvent.CREATED, state)
        return state

    def _on_received(self, request_id: bytes, request, **_kw) -> None:
        if request_id in self.requests:
            return
        state = RequestState(key=request_id, record=request, role=RequestRole.COSIGNER, status=PENDING)
        try:
            known = self.node.known_request(request_id)
            state.payload = known.payload
            state.tx, state.inputs, state.review = review_request(request, known.payload,
                                                                  self.pubkey)
            state.txid = state.tx.txid()
        except (BridgeError, RequestRefused) as exc:
            state.status = REFUSED
            state.error = f"{type(exc).__name__}: {exc}"
        self._evict()
        self.requests[request_id] = state
        self._emit(RequestEvent.RECEIVED, state)
        if state.status == PENDING and request_id.hex() in self.approvals:
            asyncio.ensure_future(self._rejoin(state))

    async def _rejoin(self, state: RequestState) -> None:
        """We approved this exact request before a restart: join again with fresh nonces."""
        state.approved = True
        try:
            state.session_ids = await self.node.join_signing_request(state.record, auto=True,
                                                                     rejoin=True)
        except Exception as exc:
            state.status = FAILED
            state.error = f"rejoin failed: {type(exc).__name__}: {exc}"
            self._emit(RequestEvent.FAILED, state)
            return
        state.status = APPROVED
        state.phases[RequestEvent.JOINED] = time.time()
        self._emit(RequestEvent.REJOINED, state)

    def _evict(self) -> None:
        """Keep at most MAX_TRACKED_REQUESTS: anyone can address requests to our public key,
        so the oldest inactive ones go first (refused, failed, done, then unanswered)."""
        order = (REFUSED, FAILED, BROADCAST, SIGNED, PENDING)
        while len(self.requests) >= MAX_TRACKED_REQUESTS:
            for status in order:
                victims = [k for k, st in self.requests.items() if st.status == status]
                if victims:
                    del self.requests[min(victims, key=lambda k: self.requests[k].created)]
                    break
            else:
                break   # only approved (running) sessions left: the node's own caps bound those

    async def poll_requests(self) -> list[RequestState]:
        """Requests stored in the DHT for us while we were away."""
        await self.node.find_signing_requests_for_me()
        return list(self.requests.values())

    def get(self, request_key: "bytes | str") -> RequestState:
        """The request under its *request key* (``coordinator.request_key(record)``, shown as
        ``request_id`` in the commands' JSON), not the creator's own ``record.request_id``."""
        try:
            key = (bytes.fromhex(request_key) if isinstance(request_key, str)
                   else bytes(request_key))
        except ValueError:
            raise BridgeError("the request id (request key) must be hex") from None
        state = self.requests.get(key)
        if state is None:
            raise BridgeError("unknown signing request")
        return state

    async def approve(self, request_key: "bytes | str") -> RequestState:
        """The user's approval: join every session of the request (both rounds run on their own)."""
        state = self.get(request_key)
        if state.status == REFUSED:
            raise BridgeError(f"this request was refused: {state.error}")
        if state.status != PENDING:
            raise BridgeError(f"this request is already {state.status}")
        state.approved = True
        self._remember_approval(state.key)
        try:
            state.session_ids = await self.node.join_signing_request(state.record, auto=True)
        except ApprovalDenied as exc:
            state.approved = False
            state.status = REFUSED
            state.error = f"{type(exc).__name__}: {exc}"
            raise BridgeError(state.error) from None
        state.status = APPROVED
        state.phases[RequestEvent.JOINED] = time.time()
        self._emit(RequestEvent.APPROVED, state)
        return state

    def _remember_approval(self, key: bytes) -> None:
        approvals = dict(self.approvals)
        approvals[key.hex()] = int(time.time())
        while len(approvals) > MAX_TRACKED_REQUESTS:
            del approvals[min(approvals, key=approvals.get)]
        self.approvals.clear()
        self.approvals.update(approvals)

    def reject(self, request_key: "bytes | str") -> RequestState:
        state = self.get(request_key)
        if state.status == PENDING:
            state.status = REFUSED
            state.error = "rejected by the user"
            self._emit(RequestEvent.REJECTED, state)
        return state

    def cancel(self, request_key: "bytes | str") -> RequestState:
        """The user's cancel: a pending request is rejected; a joined one is left (our sessions
        are dropped, with their secret nonces; the others' sessions time out)."""
        state = self.get(request_key)
        if state.status == PENDING:
            return self.reject(request_key)
        if state.status == APPROVED:
            for sid in state.session_ids:
                session = self.node.sessions.get(sid)
                if session is not None:
                    session.stop()
            state.status = FAILED
            state.error = "cancelled by the user"
            self._emit(RequestEvent.FAILED, state)
        return state

    def _approve(self, record, payload) -> bool:
        """The node's approval callback: approved by the user, for exactly what was reviewed.

        The review is a pure function of the record, the decrypted payload and our key, so
        instead of parsing and reviewing the PSBT a second time we require the very record and
        payload that passed the review at receipt (frozen dataclasses: field-wise equality,
        signature and application data included). Anything else is refused.
        """
        state = self.requests.get(request_key(record))
        if state is None or not state.approved:
            return False
        if state.review is None or record != state.record or payload != state.payload:
            state.error = "the request differs from the one reviewed and approved"
            return False
        return True

    # ------------------------------------------------------------------ signatures
    def _on_phase(self, name: RequestEvent):
        def handler(session_id: bytes, **_kw) -> None:
            for state in self.requests.values():
                if session_id in state.session_ids and name not in state.phases:
                    state.phases[name] = time.time()
                    self._emit(name, state)
        return handler

    def _on_finalized(self, session_id: bytes, request_id: bytes, index: int,
                      signature: bytes, **_kw) -> None:
        state = self.requests.get(request_id)
        if state is None or state.tx is None or index >= len(state.inputs):
            return
        input_index = state.inputs[index]
        try:
            if state.musig is None:
                state.musig = musig_inputs(state.tx)     # once per request, not per signature
            attach_signature(state.tx, input_index, signature, musig=state.musig)
        except BridgeError as exc:
            state.status = FAILED
            state.error = f"{type(exc).__name__}: {exc}"
            self._emit(RequestEvent.FAILED, state)
            return
        state.signatures[input_index] = signature
        if len(state.signatures) == len(state.inputs):
            self._complete(state)

    def _complete(self, state: RequestState) -> None:
        try:
            final = finalize(state.tx)
        except BridgeError as exc:
            # Inputs of other participant sets (not in this request) may still be unsigned.
            state.status = SIGNED
            state.error = f"{type(exc).__name__}: {exc}"
            self._emit(RequestEvent.SIGNED, state)
            return
        state.final_tx = final.serialize()
        state.status = SIGNED
        state.phases[RequestEvent.SIGNED] = time.time()
        self._emit(RequestEvent.SIGNED, state)
        if state.role is RequestRole.CREATOR and self.auto_broadcast:
            asyncio.ensure_future(self._auto_broadcast(state))

    async def broadcast(self, state: RequestState) -> str:
        """Send the final transaction once; a second caller (the ``broadcast_request`` command
        while the auto-broadcast is in flight) waits for that same send instead of sending again.

        Why it matters for speed: every request on Electrum 4.8's server connection can wait up
        to 1 s in its traffic-padding buffer (``PaddedRSTransport``), so a second broadcast of
        the same transaction doubled the signed -> broadcast time (docs/electrum-edge.md).
        """
        if state.broadcast_txid is not None:
            return state.broadcast_txid
        if state.final_tx is None:
            raise BridgeError("the transaction is not fully signed yet")
        if state._broadcasting is None:
            state._broadcasting = asyncio.ensure_future(self._broadcast_once(state))
        try:
            return await asyncio.shield(state._broadcasting)
        finally:
            fut = state._broadcasting
            if fut is not None and fut.done() and (fut.cancelled() or fut.exception() is not None):
                state._broadcasting = None     # a failed send may be retried by the user

    async def _auto_broadcast(self, state: RequestState) -> None:
        try:
            await self.broadcast(state)
        except BridgeError:
            pass                    # recorded in state.error and emitted as "failed"
        except Exception as exc:
            log.warning("broadcasting request %s: %r", state.key.hex(), exc)

    async def _broadcast_once(self, state: RequestState) -> str:
        from electrum.transaction import Transaction
        state.phases[RequestEvent.BROADCASTING] = time.time()
        state.broadcasts += 1
        try:
            txid = await broadcast(self.wallet, Transaction(state.final_tx))
        except BridgeError as exc:
            state.error = f"{type(exc).__name__}: {exc}"
            self._emit(RequestEvent.FAILED, state)
            raise
        state.broadcast_txid = txid
        state.status = BROADCAST
        state.phases[RequestEvent.BROADCAST] = time.time()
        self._emit(RequestEvent.BROADCAST, state)
        return txid

    def _on_aborted(self, session_id: bytes, request_id: bytes, reason: str,
                    culprits=(), evidence=None, **_kw) -> None:
        state = self.requests.get(request_id)
        if state is None:
            return
        state.status = FAILED
        state.culprits = tuple(culprits)
        state.evidence = dict(evidence or {})
        state.error = f"session aborted: {reason}" + (
            f" (culprits: {', '.join(c.hex() for c in culprits)})" if culprits else "")
        self._emit(RequestEvent.FAILED, state)
