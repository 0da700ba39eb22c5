"""The participant role of a session: join, make and check nonces, sign once, fail over.

Every participant runs it (the coordinator too, for its own contribution), as a mixin of
``Session`` (machine.py). What it guarantees: a secret nonce is made for exactly one
(epoch, attempt), lives only in memory and signs at most once; we sign only after checking
that the coordinator's list holds our nonce and that their aggregate is the one announced;
we leave an epoch only on evidence we see ourselves (our own timeout, a coordinator that
lies to us), never on someone else's word; the final signature is verified before use.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from ..crypto import CryptoError, SigningSession, nonce_agg, nonce_gen, schnorr_verify
from ..transport import AuthenticRefusal, MsgType
from .errors import InvalidContribution, NotOurEpoch, SessionAborted
from .states import Evidence, SessionStatus

log = logging.getLogger(__name__)


class ParticipantRole:
    """Participant half of ``Session`` (see machine.py for the attributes it shares)."""

    def join(self, *, rejoin: bool = False) -> None:
        """Join after approval. ``rejoin``: we restarted and lost our state for this session."""
        if self.closed:
            raise SessionAborted(self.abort_reason or "session is closed", self.culprits)
        if self.joined_local:
            return
        self.joined_local = True
        self._note_joined(self.me)
        if rejoin:
            # Whoever coordinates now must learn we have no nonce; we do not know who it is,
            # nor which epoch the others are in: until a READY reaches us we follow the
            # first one any reachable epoch's coordinator signs (we saw nothing ourselves).
            self._amnesiac = True
            self.status = SessionStatus.JOINING
            self._joining_since = time.monotonic()
            self._broadcast(MsgType.JOIN, epoch=self.epoch, last_attempt=-1, fresh=True,
                            endpoint=self.transport.published_endpoint())
            self._start_heartbeat()
        else:
            self._begin_joining(fresh=True)

    def _begin_joining(self, *, fresh: bool) -> None:
        self.status = SessionStatus.JOINING
        self._joining_since = time.monotonic()
        self._send_join(fresh=fresh)
        self._start_heartbeat()

    def _join_nonce(self) -> bytes | None:
        """The public nonce for the attempt the coordinator will start next if all goes well
        (our last attempt + 1, in this epoch), made now and sent with the JOIN.

        WHY: MuSig2 lets nonces be exchanged before the message is final, and ours is known
        at join time anyway. If every JOIN brings one for the same attempt, the coordinator
        answers the last JOIN with NONCES directly: READY and NONCE leave the critical path
        (7 one-way delays from request to signature down to 5; docs/sessions.md). It is the
        same one-shot secret nonce as ever: kept in memory for exactly that (epoch, attempt),
        reused by a READY for it, destroyed by anything else. Only in automatic mode: a
        manual caller starts round 1 itself.
        """
        if not self._round1_requested or self.status != SessionStatus.JOINING:
            return None
        want = (self.epoch, self.attempt + 1)
        if self._nonce_for != want or self._secnonce is None:
            self._drop_nonce()
            self._secnonce, self._pubnonce = self._make_nonce(want[1])
            self._nonce_for = want
        return self._pubnonce

    def _send_join(self, *, fresh: bool) -> None:
        epoch = self.epoch
        fields = dict(epoch=epoch, last_attempt=self.attempt, fresh=fresh,
                      endpoint=self.transport.published_endpoint(), join_nonce=self._join_nonce())
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
        while self.status == SessionStatus.JOINING and self.epoch == epoch:
            await asyncio.sleep(delay)
            if self.status != SessionStatus.JOINING or self.epoch != epoch:
                return
            if self.coordinator != self.me:
                self._send_join(fresh=False)
            delay = min(delay * 2, self.config.heartbeat_interval)

    def _coordinator_silent(self, epoch: int, joining: bool = False,
                            kind: Evidence = Evidence.TIMEOUT) -> None:
        if self.closed or epoch != self.epoch or not self.joined_local:
            return
        silent = self.spec.coordinator(epoch)
        if silent == self.me:
            return  # we are alive; our own coordinator timers handle the others
        if joining and self.status == SessionStatus.JOINING and \
                time.monotonic() - self._joining_since < self.config.participant_wait:
            return  # not reachable (or not known) yet: the heartbeat keeps trying
        if self._silent_coordinators.get(silent) != Evidence.INVALID:
            self._silent_coordinators[silent] = kind
        self.failovers += 1
        if epoch + 1 > self.config.max_failovers or epoch + 1 >= self.spec.n:
            self._abort_local("coordinators silent: " + ", ".join(
                k.hex()[:16] for k in self._silent_coordinators),
                tuple(self._silent_coordinators), evidence=dict(self._silent_coordinators))
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
        early = self._early_joins.pop(epoch, {})
        for key in [e for e in self._early_joins if e < epoch]:
            del self._early_joins[key]
        for sender, body in early.items():
            try:
                self._on_join(sender, body)
            except AuthenticRefusal as exc:     # e.g. its nonce was invalid: it is blamed
                log.info("session %s: a kept JOIN refused: %s", self.sid.hex()[:8], exc)

    def _on_ready(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        if self.closed or not self.joined_local:
            return
        if b["epoch"] > self.epoch and not self._amnesiac:
            return  # a later epoch's coordinator: we have not seen ours fail; not our move
        if b["epoch"] < self.epoch:
            if self.status not in (SessionStatus.JOINING, SessionStatus.READY,
                                   SessionStatus.ROUND1):
                return  # we signed (or are signing) in our epoch: never go back
            # We failed over, yet the coordinator we left is alive: a fresh READY it signed
            # is evidence we see ourselves. Going back (fresh nonces, as for any attempt)
            # keeps one participant's flaky link from splitting the session.
            self._return_to_epoch(b["epoch"])
        elif b["attempt"] <= self.attempt:
            return  # an older attempt: never restart it
        if self.attempts_seen >= self.config.max_attempts * (self.config.max_failovers + 1):
            # Each READY costs us a fresh nonce and a message: a coordinator that keeps
            # restarting round 1 is griefing (honest ones stop at max_attempts per epoch).
            self._abort_local("coordinator started too many attempts", (sender,), Evidence.INVALID)
            return
        if b["epoch"] > self.epoch:
            self._enter_epoch(b["epoch"])
        self._become_ready(sender, b["attempt"])
        self.status = SessionStatus.READY
        if self._round1_requested:
            self._do_round1()

    def _become_ready(self, coordinator: bytes, attempt: int) -> None:
        """Enter ``attempt``: keep our nonce only if it was made for exactly this attempt."""
        self._amnesiac = False
        self._stop_heartbeat()
        self._cancel_wait()
        if self._nonce_for != (self.epoch, attempt):
            self._drop_nonce()
            self._pubnonce = None
        self.attempt = attempt
        self.attempts_seen += 1
        self._pubnonces = self._aggnonce = self._psig = None
        for key in self.spec.participants:
            self._note_joined(key)
        if not self._ready_emitted:
            self._ready_emitted = True
            self.emitter.emit("session:ready", session_id=self.sid, attempt=self.attempt,
                              coordinator=coordinator, participants=self.spec.participants)
        else:
            self.emitter.emit("session:attempt", session_id=self.sid, attempt=self.attempt,
                              coordinator=coordinator)

    def _return_to_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._cancel_wait()
        self._drop_nonce()
        self._ensure_coordinator_state()
        self.attempt = -1
        self.emitter.emit("session:failover", session_id=self.sid, epoch=epoch,
                          coordinator=self.coordinator, silent=None)

    def _make_nonce(self, attempt: int | None = None):
        """A fresh nonce for ``attempt`` (default: the current one; BIP-327 NonceGen with
        every optional input)."""
        attempt = self.attempt if attempt is None else attempt
        extra = hashlib.sha256(self.sid + attempt.to_bytes(4, "big")).digest()
        return nonce_gen(pubkey=self.me, seckey=self._seckey, keyagg=self.spec.keyagg,
                         msg=self.spec.message, extra_in=extra)

    def _do_round1(self) -> None:
        if self.status != SessionStatus.READY:
            return
        if self._nonce_for != (self.epoch, self.attempt) or self._secnonce is None:
            self._drop_nonce()
            self._secnonce, self._pubnonce = self._make_nonce()
            self._nonce_for = (self.epoch, self.attempt)
        self.status = SessionStatus.ROUND1
        epoch = self.epoch
        self._send(self.coordinator, MsgType.NONCE, on_fail=lambda: self._coordinator_silent(epoch),
                   epoch=epoch, attempt=self.attempt, pubnonce=self._pubnonce)
        self._arm_wait(self.config.participant_wait)

    def _on_nonces(self, sender: bytes, b: dict) -> None:
        self._require_coordinator(sender, b["epoch"])
        if (b["epoch"] < self.epoch and self.status == SessionStatus.JOINING and self.joined_local
                and not self.closed):
            # We failed over, yet the coordinator we left is alive and started an attempt
            # (with the nonce of our old JOIN, destroyed when we left). Go back and ask it
            # for a new attempt: a fresh JOIN says we hold no nonce for this one.
            self._return_to_epoch(b["epoch"])
            self._begin_joining(fresh=True)
            return
        if (self.status == SessionStatus.JOINING and b["epoch"] == self.epoch and not self.closed
                and b["attempt"] > self.attempt and self._secnonce is not None
                and self._nonce_for == (self.epoch, b["attempt"])):
            # The coordinator started the attempt with the nonces of the JOINs (ours among
            # them, checked below): this NONCES is our READY as well.
            if self.attempts_seen >= self.config.max_attempts * (self.config.max_failovers + 1):
                self._abort_local("coordinator started too many attempts", (sender,),
                                  Evidence.INVALID)
                return
            self._become_ready(sender, b["attempt"])
            self.status = SessionStatus.ROUND1
            self._arm_wait(self.config.participant_wait)
        if (self.status != SessionStatus.ROUND1 or b["epoch"] != self.epoch
                or b["attempt"] != self.attempt):
            return
        pubnonces = b["pubnonces"]
        try:
            if pubnonces[self.my_signer_index] != self._pubnonce:
                raise InvalidContribution("our public nonce is not in the coordinator's list")
            aggnonce = nonce_agg(pubnonces)
            if aggnonce != b["aggnonce"]:
                raise InvalidContribution("the announced aggregate nonce is wrong")
        except (InvalidContribution, CryptoError) as exc:
            # A coordinator that lies cannot be trusted with this attempt: move on.
            self._coordinator_silent(self.epoch, kind=Evidence.INVALID)
            raise InvalidContribution(str(exc)) from None
        self._cancel_wait()
        self._pubnonces, self._aggnonce = pubnonces, aggnonce
        self.status = SessionStatus.ROUND1_DONE
        self.emitter.emit("round1:complete", session_id=self.sid, attempt=self.attempt,
                          aggnonce=aggnonce, pubnonces=tuple(pubnonces))
        if not self._round1_fut.done():
            self._round1_fut.set_result(aggnonce)
        if self._round2_requested:
            self._do_round2()

    def _make_partial_sig(self) -> bytes:
        signing = SigningSession(self.spec.keyagg, self._aggnonce, self.spec.message)
        secnonce, self._secnonce = self._secnonce, None
        self._nonce_for = None
        return signing.partial_sign(secnonce, self._seckey)   # consumes the nonce

    def _do_round2(self) -> None:
        if self.status != SessionStatus.ROUND1_DONE:
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
                self._abort_local(reason, (self.me,), Evidence.INVALID)
            return
        self.status = SessionStatus.ROUND2
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
        """Only the coordinator of *our* epoch ends it. Its culprits are its claim: we keep
        them as ``reported_culprits`` and blame nobody on its word (issue 14, item 3)."""
        culprits = tuple(dict.fromkeys(b["culprits"]))
        if any(k not in self.spec.participants for k in culprits):
            raise InvalidContribution("an abort may only name participants of the session")
        self._require_coordinator(sender, b["epoch"])
        if b["epoch"] != self.epoch:
            # A coordinator of another epoch: an old one gave up after we left it, or one
            # whose epoch we never entered. Neither ends our epoch; our own timers decide.
            raise NotOurEpoch(f"ABORT for epoch {b['epoch']}; this session is in {self.epoch}")
        if self.closed:
            return
        self.reported_culprits = culprits
        self._abort_local(b["reason"], ())
