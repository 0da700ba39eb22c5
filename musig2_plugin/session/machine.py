"""The MuSig2 session state machine: one object per (request, input) at each participant.

Every participant runs the participant role; the one elected for the current
epoch also runs the coordinator role (collect, aggregate, broadcast). The rules
that keep it safe (see docs/sessions.md for the whole protocol):

* A secret nonce is created for exactly one *attempt*, lives only in this
  object, and signs at most once (``SecretNonce`` is one-shot). A new attempt
  (after a rejoin, a failover or a restart) always means fresh nonces from
  everyone; nothing from an older attempt is ever signed again.
* A participant signs only after it has checked that the coordinator's list of
  public nonces contains its own and that their aggregate is the one announced.
* The coordinator verifies every partial signature against its sender's public
  nonce; a bad one aborts the session naming the sender. The final signature is
  BIP-340-verified by the coordinator and again by every participant.
* Every wait has a timeout. A coordinator that misses a deadline names the
  participants it is missing in ``session:aborted``; a participant that hears
  nothing from the coordinator (or cannot reach it) fails over to the next
  coordinator in the election order.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Callable

from ..foundation.config import Musig2Config
from ..crypto import (BlameError, CryptoError, SigningSession, nonce_agg, nonce_gen,
                      parse_pubnonce, schnorr_verify)
from ..foundation.errors import Musig2Error
from ..foundation.events import EventEmitter
from ..transport import (AuthenticRefusal, Envelope, EnvelopeError, MsgType, PeerRefused,
                         PeerUnreachable, Transport)
from .messages import MAX_ATTEMPT, decode_body, encode_body
from .spec import SessionSpec

log = logging.getLogger(__name__)

# Participant states.
CREATED, JOINING, READY, ROUND1, ROUND1_DONE, ROUND2, FINALIZED, ABORTED = (
    "created", "joining", "ready", "round1", "round1-done", "round2", "finalized", "aborted")
CLOSED = (FINALIZED, ABORTED)


class NotCoordinator(AuthenticRefusal):
    """A coordinator-only message from someone who is not the coordinator of that epoch."""


class InvalidContribution(AuthenticRefusal):
    """A signed message whose content is cryptographically wrong (bad nonce, bad partial sig)."""


class SessionAborted(Musig2Error):
    def __init__(self, reason: str, culprits: tuple[bytes, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.culprits = culprits


class _CoordinatorState:
    """What the coordinator of one epoch holds; thrown away when the epoch changes."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.joined: set[bytes] = set()
        self.max_attempt = -1
        self.attempt: int | None = None
        self.phase = "joins"          # joins -> nonces -> psigs -> done
        self.nonces: dict[bytes, bytes] = {}
        self.psigs: dict[bytes, bytes] = {}
        self.signing: SigningSession | None = None
        self.final: bytes | None = None
        self.timer: asyncio.TimerHandle | None = None


class Session:
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
        self.my_index = spec.index_of(self.me)
        self.config = config
        self.emitter = emitter
        self.endpoints = endpoints
        self.auto = auto
        self._on_closed = on_closed
        self.created_at = time.monotonic()

        self.status = CREATED
        self.joined_local = False
        self.epoch = 0
        self.attempt = -1
        self.attempts_seen = 0
        self.failovers = 0
        self._silent_coordinators: list[bytes] = []
        self._secnonce = None
        self._pubnonce: bytes | None = None
        self._pubnonces: list[bytes] | None = None
        self._aggnonce: bytes | None = None
        self._psig: bytes | None = None
        self.final_signature: bytes | None = None
        self.abort_reason: str | None = None
        self.culprits: tuple[bytes, ...] = ()
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
        self._coord: _CoordinatorState | None = None
        self._life_timer = loop.call_later(config.session_lifetime, self._lifetime_over)
        self._ensure_coordinator_state()
        emitter.emit("session:created", session_id=self.sid, request_id=spec.request_id,
                     participants=spec.participants, index=spec.index)

    # ------------------------------------------------------------------ helpers
    @property
    def coordinator(self) -> bytes:
        return self.spec.coordinator(self.epoch)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

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
            await self.transport.send(endpoint, env, to=key)
        except PeerUnreachable as exc:
            log.info("session %s: %s unreachable: %s", self.sid.hex()[:8], key.hex()[:10], exc)
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

    # ------------------------------------------------------------------ joining
    def join(self, *, rejoin: bool = False) -> None:
        """Join after approval. ``rejoin``: we restarted and lost our state for this session."""
        if self.closed:
            raise SessionAborted(self.abort_reason or "session is closed", self.culprits)
        if self.joined_local:
            return
        self.joined_local = True
        self._note_joined(self.me)
        if rejoin:
            # Whoever coordinates now must learn we have no nonce; we do not know who it is.
            self.status = JOINING
            self._joining_since = time.monotonic()
            self._broadcast(MsgType.JOIN, epoch=self.epoch, last_attempt=-1, fresh=True,
                            endpoint=self.transport.published_endpoint())
            self._start_heartbeat()
        else:
            self._begin_joining(fresh=True)

    def _begin_joining(self, *, fresh: bool) -> None:
        self.status = JOINING
        self._joining_since = time.monotonic()
        self._send_join(fresh=fresh)
        self._start_heartbeat()

    def _send_join(self, *, fresh: bool) -> None:
        epoch = self.epoch
        fields = dict(epoch=epoch, last_attempt=self.attempt, fresh=fresh,
                      endpoint=self.transport.published_endpoint())
        if self.coordinator == self.me:
            # The coordinator tells everyone where it is: a participant may not know its
            # endpoint yet (it was offline when the request was announced).
            self._broadcast(MsgType.JOIN, **fields)
        else:
            self._send(self.coordinator, MsgType.JOIN,
                       on_fail=lambda: self._coordinator_silent(epoch, joining=True), **fields)

    def _start_heartbeat(self) -> None:
        self._stop_heartbeat()
        self._heartbeat = asyncio.ensure_future(self._heartbeat_loop(self.epoch))

    async def _heartbeat_loop(self, epoch: int) -> None:
        delay = min(0.2, self.config.heartbeat_interval)
        while self.status == JOINING and self.epoch == epoch:
            await asyncio.sleep(delay)
            if self.status != JOINING or self.epoch != epoch:
                return
            if self.coordinator != self.me:
                self._send_join(fresh=False)
            delay = min(delay * 2, self.config.heartbeat_interval)

    def _note_joined(self, key: bytes) -> None:
        if key not in self._seen_joined:
            self._seen_joined.add(key)
            self.emitter.emit("session:joined", session_id=self.sid, participant=key,
                              joined=len(self._seen_joined), n=self.spec.n)

    # ------------------------------------------------------------------ failover
    def _coordinator_silent(self, epoch: int, joining: bool = False) -> None:
        if self.closed or epoch != self.epoch or not self.joined_local:
            return
        silent = self.spec.coordinator(epoch)
        if silent == self.me:
            return  # we are alive; our own coordinator timers handle the others
        if joining and self.status == JOINING and \
                time.monotonic() - self._joining_since < self.config.participant_wait:
            return  # not reachable (or not known) yet: the heartbeat keeps trying
        self._silent_coordinators.append(silent)
        self.failovers += 1
        if epoch + 1 > self.config.max_failovers or epoch + 1 >= self.spec.n:
            self._abort_local("coordinators silent: " + ", ".join(
                k.hex()[:16] for k in self._silent_coordinators),
                tuple(dict.fromkeys(self._silent_coordinators)))
            return
        self._enter_epoch(epoch + 1)
        self._begin_joining(fresh=False)

    def _enter_epoch(self, epoch: int) -> None:
        """Move to a later epoch: the old attempt is dead; its unused nonce is destroyed."""
        silent = self.coordinator
        self.epoch = epoch
        self._cancel_wait()
        self._drop_nonce()
        self._ensure_coordinator_state()
        self.emitter.emit("session:failover", session_id=self.sid, epoch=epoch,
                          coordinator=self.coordinator, silent=silent)

    def _drop_nonce(self) -> None:
        if self._secnonce is not None:
            self._secnonce.discard()
            self._secnonce = None

    # ------------------------------------------------------------------ dispatch
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

    # ------------------------------------------------------------------ coordinator role
    def _ensure_coordinator_state(self) -> None:
        if self.coordinator != self.me:
            if self._coord is not None and self._coord.timer is not None:
                self._coord.timer.cancel()
            self._coord = None
            return
        if self._coord is not None and self._coord.epoch == self.epoch:
            return
        if self._coord is not None and self._coord.timer is not None:
            self._coord.timer.cancel()
        self._coord = _CoordinatorState(self.epoch)
        wait = self.config.join_timeout if self.epoch == 0 else self.config.rejoin_timeout
        self._arm_coord(wait, "joins")

    def _arm_coord(self, delay: float, phase: str) -> None:
        c = self._coord
        if c.timer is not None:
            c.timer.cancel()
        c.timer = asyncio.get_running_loop().call_later(delay, self._coord_deadline, c, phase)

    def _coord_deadline(self, c: _CoordinatorState, phase: str) -> None:
        if c is not self._coord or c.phase != phase or self.closed:
            return
        parts = self.spec.participants
        if phase == "joins":
            missing = [k for k in parts if k not in c.joined]
            what = "never joined"
        elif phase == "nonces":
            missing = [k for k in parts if k not in c.nonces]
            what = "sent no public nonce in round 1"
        else:
            missing = [k for k in parts if k not in c.psigs]
            what = "sent no partial signature in round 2"
        self._coordinator_abort(f"{len(missing)} participant(s) {what}", tuple(missing))

    def _coordinator_abort(self, reason: str, culprits: tuple[bytes, ...]) -> None:
        c = self._coord
        c.phase = "done"
        if c.timer is not None:
            c.timer.cancel()
        self._broadcast(MsgType.ABORT, epoch=self.epoch, attempt=max(c.attempt or 0, 0),
                        reason=reason[:200], culprits=list(culprits))
        self._abort_local(reason, culprits)

    def _on_join(self, sender: bytes, b: dict) -> None:
        epoch = b["epoch"]
        if not self._epoch_reachable(epoch):    # refused before it changes anything
            raise InvalidContribution("epoch beyond the failover bound")
        if b["endpoint"] is not None and sender != self.me:
            self.endpoints[sender] = tuple(b["endpoint"])
        self._note_joined(sender)
        if self.closed:
            if (self.final_signature is not None and sender != self.me
                    and self.coordinator == self.me):
                # A restarted participant may have missed the end: give it the signature.
                self._send(sender, MsgType.FINAL, epoch=self.epoch, attempt=max(self.attempt, 0),
                           signature=self.final_signature)
            return
        # Our current coordinator restarted and lost its state: tell it we are here.
        if (b["fresh"] and sender != self.me and sender == self.coordinator
                and self.joined_local and self.status != JOINING):
            self._send_join(fresh=False)
        if epoch > self.epoch and (self.spec.coordinator(epoch) == self.me
                                   or sender == self.spec.coordinator(epoch)):
            # Either others failed over to us before our own timer fired (take over), or the
            # coordinator of a later epoch announces itself: the group moved on, follow it,
            # so that one participant's early failover cannot split the session.
            self._enter_epoch(epoch)
            if self.joined_local:
                self._begin_joining(fresh=False)
        c = self._coord
        if c is None:
            return  # not the coordinator of our epoch; a rejoin broadcast reached us
        c.joined.add(sender)
        c.max_attempt = max(c.max_attempt, b["last_attempt"])
        if c.phase == "done":
            if c.final is not None:
                self._send(sender, MsgType.FINAL, epoch=self.epoch, attempt=c.attempt,
                           signature=c.final)
            return
        if c.phase in ("nonces", "psigs"):
            if b["fresh"]:
                self._start_attempt()       # it lost its nonce: everyone starts round 1 again
            elif c.phase == "nonces" and epoch < self.epoch:
                self._send(sender, MsgType.READY, epoch=self.epoch, attempt=c.attempt)
            return
        if len(c.joined) == self.spec.n:
            self._start_attempt()

    def _start_attempt(self) -> None:
        c = self._coord
        attempt = max(c.max_attempt, self.attempt, -1 if c.attempt is None else c.attempt) + 1
        self._attempts_started += 1
        if self._attempts_started > self.config.max_attempts or attempt >= MAX_ATTEMPT:
            self._coordinator_abort("too many attempts", ())
            return
        c.attempt = attempt
        c.phase = "nonces"
        c.nonces.clear()
        c.psigs.clear()
        c.signing = None
        self._arm_coord(self.config.round_timeout, "nonces")
        self._broadcast(MsgType.READY, epoch=self.epoch, attempt=attempt)

    def _coord_for(self, b: dict, phase: str) -> _CoordinatorState | None:
        c = self._coord
        if c is None or b["epoch"] != c.epoch or c.attempt != b["attempt"] or c.phase != phase:
            return None  # stale or early (a previous attempt or epoch): ignore, no blame
        return c

    def _on_nonce(self, sender: bytes, b: dict) -> None:
        c = self._coord_for(b, "nonces")
        if c is None:
            return
        old = c.nonces.get(sender)
        if old is not None and old != b["pubnonce"]:
            raise InvalidContribution("two different public nonces for one attempt")
        try:
            parse_pubnonce(b["pubnonce"], self.spec.index_of(sender))
        except BlameError:
            # Blame at once rather than after everyone else has answered.
            self._coordinator_abort("invalid public nonce", (sender,))
            raise InvalidContribution("public nonce is not two valid points") from None
        c.nonces[sender] = b["pubnonce"]
        if len(c.nonces) < self.spec.n:
            return
        ordered = [c.nonces[k] for k in self.spec.participants]
        try:
            c.signing = SigningSession.from_pubnonces(self.spec.keyagg, ordered, self.spec.message)
        except BlameError as exc:
            culprit = self.spec.participants[exc.index] if exc.index is not None else None
            self._coordinator_abort(f"invalid public nonce: {exc.reason}",
                                    (culprit,) if culprit else ())
            return
        c.phase = "psigs"
        self._arm_coord(self.config.round_timeout, "psigs")
        self._broadcast(MsgType.NONCES, epoch=self.epoch, attempt=c.attempt, pubnonces=ordered,
                        aggnonce=c.signing.aggnonce)

    def _on_psig(self, sender: bytes, b: dict) -> None:
        c = self._coord_for(b, "psigs")
        if c is None:
            return
        index = self.spec.index_of(sender)
        try:
            ok = c.signing.partial_sig_verify(b["psig"], c.nonces[sender], index)
        except BlameError:
            ok = False
        if not ok:
            self._coordinator_abort("invalid partial signature", (sender,))
            raise InvalidContribution("partial signature does not verify")
        c.psigs[sender] = b["psig"]
        if len(c.psigs) < self.spec.n:
            return
        try:
            sig = c.signing.aggregate([c.psigs[k] for k in self.spec.participants])
        except BlameError as exc:
            culprit = self.spec.participants[exc.index] if exc.index is not None else None
            self._coordinator_abort(f"aggregation failed: {exc.reason}",
                                    (culprit,) if culprit else ())
            return
        if not schnorr_verify(self.spec.aggregate_xonly, self.spec.message, sig):
            self._coordinator_abort("final signature does not verify", ())
            return
        c.phase = "done"
        c.final = sig
        if c.timer is not None:
            c.timer.cancel()
        self._emit_round2()
        self._broadcast(MsgType.FINAL, epoch=self.epoch, attempt=c.attempt, signature=sig)

    # ------------------------------------------------------------------ participant role
    def _on_ready(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        if self.closed or not self.joined_local:
            return
        if b["epoch"] < self.epoch or b["attempt"] <= self.attempt:
            return  # an older attempt: never restart it
        if self.attempts_seen >= self.config.max_attempts * (self.config.max_failovers + 1):
            # Each READY costs us a fresh nonce and a message: a coordinator that keeps
            # restarting round 1 is griefing (honest ones stop at max_attempts per epoch).
            self._abort_local("coordinator started too many attempts", (sender,))
            return
        if b["epoch"] > self.epoch:
            self._enter_epoch(b["epoch"])
        self._stop_heartbeat()
        self._cancel_wait()
        self._drop_nonce()
        self.attempt = b["attempt"]
        self.attempts_seen += 1
        self._pubnonce = self._pubnonces = self._aggnonce = self._psig = None
        self.status = READY
        for key in self.spec.participants:
            self._note_joined(key)
        if not self._ready_emitted:
            self._ready_emitted = True
            self.emitter.emit("session:ready", session_id=self.sid, attempt=self.attempt,
                              coordinator=sender, participants=self.spec.participants)
        else:
            self.emitter.emit("session:attempt", session_id=self.sid, attempt=self.attempt,
                              coordinator=sender)
        if self._round1_requested:
            self._do_round1()

    def _make_nonce(self):
        """A fresh nonce for this attempt (BIP-327 NonceGen with every optional input)."""
        extra = hashlib.sha256(self.sid + self.attempt.to_bytes(4, "big")).digest()
        return nonce_gen(pubkey=self.me, seckey=self._seckey, keyagg=self.spec.keyagg,
                         msg=self.spec.message, extra_in=extra)

    def _do_round1(self) -> None:
        if self.status != READY:
            return
        self._secnonce, self._pubnonce = self._make_nonce()
        self.status = ROUND1
        epoch = self.epoch
        self._send(self.coordinator, MsgType.NONCE, on_fail=lambda: self._coordinator_silent(epoch),
                   epoch=epoch, attempt=self.attempt, pubnonce=self._pubnonce)
        self._arm_wait(self.config.participant_wait)

    def _on_nonces(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        if (self.status != ROUND1 or b["epoch"] != self.epoch or b["attempt"] != self.attempt):
            return
        pubnonces = b["pubnonces"]
        try:
            if pubnonces[self.my_index] != self._pubnonce:
                raise InvalidContribution("our public nonce is not in the coordinator's list")
            aggnonce = nonce_agg(pubnonces)
            if aggnonce != b["aggnonce"]:
                raise InvalidContribution("the announced aggregate nonce is wrong")
        except (InvalidContribution, CryptoError) as exc:
            # A coordinator that lies cannot be trusted with this attempt: move on.
            self._coordinator_silent(self.epoch)
            raise InvalidContribution(str(exc)) from None
        self._cancel_wait()
        self._pubnonces, self._aggnonce = pubnonces, aggnonce
        self.status = ROUND1_DONE
        self.emitter.emit("round1:complete", session_id=self.sid, attempt=self.attempt,
                          aggnonce=aggnonce, pubnonces=tuple(pubnonces))
        if not self._round1_fut.done():
            self._round1_fut.set_result(aggnonce)
        if self._round2_requested:
            self._do_round2()

    def _make_partial_sig(self) -> bytes:
        signing = SigningSession(self.spec.keyagg, self._aggnonce, self.spec.message)
        secnonce, self._secnonce = self._secnonce, None
        return signing.partial_sign(secnonce, self._seckey)   # consumes the nonce

    def _do_round2(self) -> None:
        if self.status != ROUND1_DONE:
            return
        try:
            self._psig = self._make_partial_sig()
        except CryptoError as exc:
            # The nonce is gone either way (consumed or destroyed): this attempt cannot be
            # finished by us. Say so now rather than let the coordinator time out on us.
            log.error("session %s: our partial signature failed: %s", self.sid.hex()[:8], exc)
            reason = f"our partial signature failed: {type(exc).__name__}"
            if self._coord is not None:
                self._coordinator_abort(reason, (self.me,))
            else:
                self._abort_local(reason, (self.me,))
            return
        self.status = ROUND2
        epoch = self.epoch
        self._send(self.coordinator, MsgType.PSIG, on_fail=lambda: self._coordinator_silent(epoch),
                   epoch=epoch, attempt=self.attempt, psig=self._psig)
        self._arm_wait(self.config.participant_wait)

    def _on_final(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        if self.closed:
            return
        sig = b["signature"]
        if not schnorr_verify(self.spec.aggregate_xonly, self.spec.message, sig):
            raise InvalidContribution("final signature does not verify")
        self._finalize(sig)

    def _on_abort(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        culprits = tuple(dict.fromkeys(b["culprits"]))
        if any(k not in self.spec.participants for k in culprits):
            raise InvalidContribution("an abort may only name participants of the session")
        if self.closed or b["epoch"] < self.epoch:
            return
        self._abort_local(b["reason"], culprits)

    # ------------------------------------------------------------------ API hooks
    def set_auto(self, auto: bool) -> None:
        """Manual mode: rounds start only through ``round1()`` / ``round2()``."""
        self.auto = auto
        self._round1_requested = self._round2_requested = auto

    async def round1(self) -> bytes:
        self._round1_requested = True
        if self.status == READY:
            self._do_round1()
        return await self._await(self._round1_fut)

    async def round2(self) -> bytes:
        self._round2_requested = True
        if self.status == ROUND1_DONE:
            self._do_round2()
        return await self._await(self._final_fut)

    async def wait_final(self) -> bytes:
        return await self._await(self._final_fut)

    async def _await(self, fut: asyncio.Future):
        return await asyncio.shield(fut)

    # ------------------------------------------------------------------ endings
    def _emit_round2(self) -> None:
        if not self._round2_emitted:
            self._round2_emitted = True
            self.emitter.emit("round2:complete", session_id=self.sid, attempt=self.attempt)

    def _finalize(self, sig: bytes) -> None:
        self.status = FINALIZED
        self.final_signature = sig
        self._teardown()
        self._emit_round2()
        self.emitter.emit("signature:finalized", session_id=self.sid,
                          request_id=self.spec.request_id, index=self.spec.index,
                          signature=sig, message=self.spec.message,
                          aggregate_key=self.spec.aggregate_xonly)
        if not self._final_fut.done():
            self._final_fut.set_result(sig)
        if not self._round1_fut.done():
            self._round1_fut.set_result(self._aggnonce)
        self.emitter.emit("session:closed", session_id=self.sid, outcome=FINALIZED)
        if self._on_closed:
            self._on_closed(self)

    def _abort_local(self, reason: str, culprits: tuple[bytes, ...]) -> None:
        if self.closed:
            return
        self.status = ABORTED
        self.abort_reason = reason
        self.culprits = tuple(culprits)
        self._teardown()
        if self._coord is not None:
            self._coord.phase = "done"
        self.emitter.emit("session:aborted", session_id=self.sid, request_id=self.spec.request_id,
                          reason=reason, culprits=self.culprits)
        exc = SessionAborted(reason, self.culprits)
        for fut in (self._round1_fut, self._final_fut):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: nobody may be awaiting it
        self.emitter.emit("session:closed", session_id=self.sid, outcome=ABORTED)
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
            self._coordinator_abort("session lifetime exceeded", missing)
            return
        self._life_timer = asyncio.get_running_loop().call_later(
            self.config.coordinator_grace, self._lifetime_final)

    def _lifetime_final(self) -> None:
        if self.closed:
            return
        culprits = (self.coordinator,) if self.joined_local and self.status == JOINING else ()
        self._abort_local("session lifetime exceeded", culprits)

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
