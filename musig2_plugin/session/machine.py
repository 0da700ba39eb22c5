"""The MuSig2 session state machine: one object per (request, input) at each participant.

``Session`` is the core every role shares (state, sending, timers, dispatch, endings); the
roles live in their own modules and are mixed in: ``ParticipantRole`` (participant.py),
run by everyone, and ``CoordinatorRole`` (coordinator_role.py), active in the one
participant elected for the current epoch. States are enums (states.py). The rules that
keep it safe (see docs/sessions.md for the whole protocol):

* A secret nonce is created for exactly one *attempt*, lives only in this
  object, and signs at most once (``SecretNonce`` is one-shot). A new attempt
  (after a rejoin, a failover or a restart) always means fresh nonces from
  everyone; nothing from an older attempt is ever signed again.
* A participant signs only after it has checked that the coordinator's list of
  public nonces contains its own and that their aggregate is the one announced.
* The coordinator verifies every partial signature against its sender's public
  nonce; a bad one aborts the session naming the sender. The final signature is
  BIP-340-verified by the coordinator and again by every participant.
* Every wait has a timeout. Blame is recorded only on this node's own evidence
  (``Evidence``); only the current coordinator, or each participant on its own
  timeout, ends an epoch.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from ..foundation.config import Musig2Config
from ..foundation.events import EventEmitter
from ..transport import (AuthenticRefusal, Envelope, EnvelopeError, MsgType, PeerRefused,
                         PeerUnreachable, Transport)
from .coordinator_role import CoordinatorRole, CoordinatorState
from .errors import InvalidContribution, NotCoordinator, NotOurEpoch, SessionAborted
from .messages import decode_body, encode_body
from .participant import ParticipantRole
from .spec import SessionSpec
from .states import CoordinatorPhase, Evidence, SessionStatus

log = logging.getLogger(__name__)

__all__ = ["Session", "SessionAborted", "NotCoordinator", "NotOurEpoch", "InvalidContribution",
           "SessionStatus", "CoordinatorPhase", "Evidence"]


class Session(ParticipantRole, CoordinatorRole):
    def __init__(self, spec: SessionSpec, *, seckey: bytes, transport: Transport,
                 config: Musig2Config, emitter: EventEmitter, endpoints: dict,
                 auto: bool = True, on_closed: Callable[["Session"], None] | None = None) -> None:
        self.spec = spec
        self.sid = spec.session_id
        self._seckey = seckey
        self.transport = transport
        self.me = transport.pubkey
        if self.me not in spec.participants:
            raise ValueError("this node's key is not a participant of the session")
        self.my_signer_index = spec.signer_index_of(self.me)
        self.config = config
        self.emitter = emitter
        self.endpoints = endpoints
        #: The last delivery failure per participant (e.g. "through relay <key>@host:port: no
        #: answer"), and deliveries in flight (key -> endpoint): an abort for missing
        #: participants names where their messages got lost. Bounded by the participants.
        self.delivery_errors: dict[bytes, str] = {}
        self.delivering: dict[bytes, object] = {}
        self.auto = auto
        self._on_closed = on_closed
        self.created_at = time.monotonic()

        self.status = SessionStatus.CREATED
        self.joined_local = False
        self.epoch = 0
        self.attempt = -1
        self.attempts_seen = 0
        self.failovers = 0
        #: Coordinators we left, with the kind of our evidence (silent, or caught lying).
        self._silent_coordinators: dict[bytes, Evidence] = {}
        self._secnonce = None
        #: (epoch, attempt) the secret nonce we hold was made for.
        self._nonce_for: tuple[int, int] | None = None
        self._pubnonce: bytes | None = None
        self._pubnonces: list[bytes] | None = None
        self._aggnonce: bytes | None = None
        self._psig: bytes | None = None
        self.final_signature: bytes | None = None
        self.abort_reason: str | None = None
        self.culprits: tuple[bytes, ...] = ()
        self.evidence: dict[bytes, Evidence] = {}
        self.reported_culprits: tuple[bytes, ...] = ()
        #: JOINs for a later epoch that we would coordinate, kept until our own timeout
        #: takes us there (bounded: epochs <= max_failovers, one per participant).
        self._early_joins: dict[int, dict[bytes, dict]] = {}
        self._amnesiac = False
        self._seen_joined: set[bytes] = set()
        self._joining_since = 0.0
        self._attempts_started = 0
        self._ready_emitted = False
        self._round2_emitted = False
        self._round1_requested = auto
        self._round2_requested = auto

        loop = asyncio.get_running_loop()
        self._round1_fut: asyncio.Future = loop.create_future()
        self._final_fut: asyncio.Future = loop.create_future()
        self._tasks: set[asyncio.Task] = set()
        self._wait_timer: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.Task | None = None
        self._coord: CoordinatorState | None = None
        self._life_timer = loop.call_later(config.session_lifetime, self._lifetime_over)
        self._ensure_coordinator_state()
        emitter.emit("session:created", session_id=self.sid, request_id=spec.request_id,
                     participants=spec.participants, index=spec.message_index)

    @property
    def coordinator(self) -> bytes:
        return self.spec.coordinator(self.epoch)

    @property
    def closed(self) -> bool:
        return self.status.closed

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _endpoint(self, key: bytes):
        if key == self.me:
            return self.transport.endpoint
        # Endpoints their owners signed first; this request's hints only as a fallback.
        found = self.endpoints.get(key)
        return found if found is not None else self.spec.endpoints.get(key)

    def _send(self, key: bytes, msg_type: MsgType, on_fail: Callable[[], None] | None = None,
              **fields) -> None:
        env = self.transport.seal(msg_type, self.sid, encode_body(msg_type, **fields))
        self._spawn(self._deliver(key, env, on_fail))

    def _broadcast(self, msg_type: MsgType, **fields) -> None:
        env = self.transport.seal(msg_type, self.sid, encode_body(msg_type, **fields))
        for key in self.spec.participants:
            self._spawn(self._deliver(key, env, None))

    async def _deliver(self, key: bytes, env: Envelope, on_fail) -> None:
        endpoint = self._endpoint(key)
        try:
            if endpoint is None:
                raise PeerUnreachable("no known endpoint for this participant")
            self.delivering[key] = endpoint
            try:
                await self.transport.send(endpoint, env, to=key)
            finally:
                self.delivering.pop(key, None)
            self.delivery_errors.pop(key, None)
        except PeerUnreachable as exc:
            log.info("session %s: %s unreachable: %s", self.sid.hex()[:8], key.hex()[:10], exc)
            if key in self.spec.participants:
                self.delivery_errors[key] = str(exc)[:160]
            if on_fail is not None:
                on_fail()
        except PeerRefused as exc:
            log.info("session %s: %s refused %s: %s", self.sid.hex()[:8], key.hex()[:10],
                     env.msg_type.name, exc)
        except AuthenticRefusal as exc:  # local delivery to ourselves refused (stale state)
            log.debug("local delivery refused: %s", exc)
        except EnvelopeError as exc:      # local delivery hit an error in our own handler
            log.warning("session %s: local delivery of %s failed: %s", self.sid.hex()[:8],
                        env.msg_type.name, exc)

    def _cancel_wait(self) -> None:
        if self._wait_timer is not None:
            self._wait_timer.cancel()
            self._wait_timer = None

    def _arm_wait(self, delay: float) -> None:
        """Expect the coordinator's next message within ``delay``, else fail over."""
        self._cancel_wait()
        epoch = self.epoch
        self._wait_timer = asyncio.get_running_loop().call_later(
            delay, self._coordinator_silent, epoch)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    def _note_joined(self, key: bytes) -> None:
        if key not in self._seen_joined:
            self._seen_joined.add(key)
            self.emitter.emit("session:joined", session_id=self.sid, participant=key,
                              joined=len(self._seen_joined), n=self.spec.n)

    def _drop_nonce(self) -> None:
        if self._secnonce is not None:
            self._secnonce.discard()
            self._secnonce = None
        self._nonce_for = None

    async def handle(self, env: Envelope, body: dict | None = None) -> None:
        """Act on an admitted envelope (``body``: already decoded by the manager)."""
        if body is None:
            body = decode_body(env.msg_type, env.body, self.spec.n)
        handler = {
            MsgType.JOIN: self._on_join, MsgType.READY: self._on_ready,
            MsgType.NONCE: self._on_nonce, MsgType.NONCES: self._on_nonces,
            MsgType.PSIG: self._on_psig, MsgType.FINAL: self._on_final,
            MsgType.ABORT: self._on_abort,
        }[env.msg_type]
        handler(env.sender, body)

    def _epoch_reachable(self, epoch: int) -> bool:
        """Epochs a failover can reach. Every key coordinates *some* epoch (order[e mod n]),
        so without this bound any participant could speak as coordinator."""
        return epoch <= self.config.max_failovers and epoch < self.spec.n

    def _require_coordinator(self, sender: bytes, epoch: int) -> None:
        if not self._epoch_reachable(epoch):
            raise InvalidContribution("epoch beyond the failover bound")
        if self.spec.coordinator(epoch) != sender:
            raise NotCoordinator(f"sender is not the coordinator of epoch {epoch}")

    def set_auto(self, auto: bool) -> None:
        """Manual mode: rounds start only through ``round1()`` / ``round2()``."""
        self.auto = auto
        self._round1_requested = self._round2_requested = auto

    async def round1(self) -> bytes:
        self._round1_requested = True
        if self.status == SessionStatus.READY:
            self._do_round1()
        return await self._await(self._round1_fut)

    async def round2(self) -> bytes:
        self._round2_requested = True
        if self.status == SessionStatus.ROUND1_DONE:
            self._do_round2()
        return await self._await(self._final_fut)

    async def wait_final(self) -> bytes:
        return await self._await(self._final_fut)

    async def _await(self, fut: asyncio.Future):
        return await asyncio.shield(fut)

    def _emit_round2(self) -> None:
        if not self._round2_emitted:
            self._round2_emitted = True
            self.emitter.emit("round2:complete", session_id=self.sid, attempt=self.attempt)

    def _finalize(self, sig: bytes) -> None:
        self.status = SessionStatus.FINALIZED
        self.final_signature = sig
        self._teardown()
        self._emit_round2()
        self.emitter.emit("signature:finalized", session_id=self.sid,
                          request_id=self.spec.request_id, index=self.spec.message_index,
                          signature=sig, message=self.spec.message,
                          aggregate_key=self.spec.aggregate_xonly)
        if not self._final_fut.done():
            self._final_fut.set_result(sig)
        if not self._round1_fut.done():
            self._round1_fut.set_result(self._aggnonce)
        self.emitter.emit("session:closed", session_id=self.sid, outcome=SessionStatus.FINALIZED)
        if self._on_closed:
            self._on_closed(self)

    def _abort_local(self, reason: str, culprits: tuple[bytes, ...],
                     kind: Evidence = Evidence.TIMEOUT,
                     evidence: dict[bytes, Evidence] | None = None) -> None:
        """End the session here. ``culprits``: only whom this node has evidence against
        itself, of ``kind`` (Evidence.INVALID or Evidence.TIMEOUT)."""
        if self.closed:
            return
        self.status = SessionStatus.ABORTED
        self.abort_reason = reason
        self.culprits = tuple(culprits)
        # Invalid evidence we caught earlier in the session outranks a later timeout.
        self.evidence = {k: Evidence.INVALID
                         if self._silent_coordinators.get(k) == Evidence.INVALID
                         else (evidence or {}).get(k, kind) for k in self.culprits}
        self._teardown()
        if self._coord is not None:
            self._coord.phase = CoordinatorPhase.DONE
        self.emitter.emit("session:aborted", session_id=self.sid, request_id=self.spec.request_id,
                          reason=reason, culprits=self.culprits, evidence=dict(self.evidence),
                          reported=self.reported_culprits)
        exc = SessionAborted(reason, self.culprits, self.evidence, self.reported_culprits)
        for fut in (self._round1_fut, self._final_fut):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: nobody may be awaiting it
        self.emitter.emit("session:closed", session_id=self.sid, outcome=SessionStatus.ABORTED)
        if self._on_closed:
            self._on_closed(self)

    def _lifetime_over(self) -> None:
        """Name only whom we can vouch for.

        The coordinator saw every JOIN: it names the missing and tells everyone. A plain
        participant never sees the others' JOINs (they go to the coordinator), so naming
        "everyone I did not hear from" blamed honest participants; it waits a grace period
        for the coordinator's ABORT instead, and if none comes while it is still waiting
        to be made ready, the coordinator is the one that failed it.
        """
        if self.closed:
            return
        if self._coord is not None:
            missing = tuple(k for k in self.spec.participants if k not in self._coord.joined)
            self._coordinator_abort("session lifetime exceeded", missing, Evidence.TIMEOUT)
            return
        self._life_timer = asyncio.get_running_loop().call_later(
            self.config.coordinator_grace, self._lifetime_final)

    def _lifetime_final(self) -> None:
        if self.closed:
            return
        waiting = self.joined_local and self.status == SessionStatus.JOINING
        culprits = (self.coordinator,) if waiting else ()
        self._abort_local("session lifetime exceeded", culprits, Evidence.TIMEOUT)

    def _teardown(self) -> None:
        self._cancel_wait()
        self._stop_heartbeat()
        self._drop_nonce()
        self._life_timer.cancel()
        if self._coord is not None and self._coord.timer is not None:
            self._coord.timer.cancel()

    def stop(self) -> None:
        """Node shutdown: forget everything (the nonce is destroyed), tell nobody."""
        if not self.closed:
            self._abort_local("node stopped", ())
        for task in list(self._tasks):
            task.cancel()
