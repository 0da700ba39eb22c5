"""The coordinator role of a session: collect JOINs and nonces, aggregate, verify, finish.

Run by the one participant elected for the current epoch (``SessionSpec.coordinator``),
as a mixin of ``Session`` (machine.py), whose core it uses for sending, timers and endings.
What it guarantees: an attempt starts only when all n joined; every public nonce and
partial signature is checked against its sender before use, and a bad one aborts naming
that sender on ``Evidence.INVALID``; a deadline it misses itself names the missing on
``Evidence.TIMEOUT``; the final signature is BIP-340-verified before it is sent.
"""
from __future__ import annotations

import asyncio

from ..crypto import BlameError, SigningSession, parse_pubnonce, schnorr_verify
from ..transport import MsgType
from .errors import InvalidContribution
from .messages import MAX_ATTEMPT
from .states import CoordinatorPhase as Phase
from .states import Evidence, SessionStatus


class CoordinatorState:
    """What the coordinator of one epoch holds; thrown away when the epoch changes."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.joined: set[bytes] = set()
        self.max_attempt = -1
        self.attempt: int | None = None
        self.phase = Phase.JOINS          # joins -> nonces -> psigs -> done
        self.nonces: dict[bytes, bytes] = {}
        #: Public nonces that came with the JOINs: sender -> (attempt it is for, nonce).
        self.join_nonces: dict[bytes, tuple[int, bytes]] = {}
        self.psigs: dict[bytes, bytes] = {}
        self.signing: SigningSession | None = None
        self.final: bytes | None = None
        self.timer: asyncio.TimerHandle | None = None


class CoordinatorRole:
    """Coordinator half of ``Session`` (see machine.py for the attributes it shares)."""

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
        self._coord = CoordinatorState(self.epoch)
        wait = self.config.join_timeout if self.epoch == 0 else self.config.rejoin_timeout
        self._arm_coord(wait, Phase.JOINS)

    def _arm_coord(self, delay: float, phase: Phase) -> None:
        c = self._coord
        if c.timer is not None:
            c.timer.cancel()
        c.timer = asyncio.get_running_loop().call_later(delay, self._coord_deadline, c, phase)

    def _coord_deadline(self, c: CoordinatorState, phase: Phase) -> None:
        if c is not self._coord or c.phase != phase or self.closed:
            return
        parts = self.spec.participants
        if phase == Phase.JOINS:
            missing = [k for k in parts if k not in c.joined]
            what = "never joined"
        elif phase == Phase.NONCES:
            missing = [k for k in parts if k not in c.nonces]
            what = "sent no public nonce in round 1"
        else:
            missing = [k for k in parts if k not in c.psigs]
            what = "sent no partial signature in round 2"
        # Say where the missing ones' messages got lost (e.g. "through relay <key>@host:port").
        lost = [f"{k.hex()[:10]}: {self.delivery_errors[k]}" if k in self.delivery_errors
                else f"{k.hex()[:10]}: no answer yet through {self.delivering[k]}"
                for k in missing if k in self.delivery_errors or k in self.delivering]
        self._coordinator_abort(f"{len(missing)} participant(s) {what}"
                                + (f" (unreachable {'; '.join(lost)})" if lost else ""),
                                tuple(missing), Evidence.TIMEOUT)

    def _coordinator_abort(self, reason: str, culprits: tuple[bytes, ...],
                           kind: Evidence = Evidence.INVALID) -> None:
        c = self._coord
        c.phase = Phase.DONE
        if c.timer is not None:
            c.timer.cancel()
        self._broadcast(MsgType.ABORT, epoch=self.epoch, attempt=max(c.attempt or 0, 0),
                        reason=reason[:200], culprits=list(culprits))
        self._abort_local(reason, culprits, kind)

    def _on_join(self, sender: bytes, b: dict) -> None:
        epoch = b["epoch"]
        if not self._epoch_reachable(epoch):    # refused before it changes anything
            raise InvalidContribution("epoch beyond the failover bound")
        if b["endpoint"] is not None and sender != self.me:
            self.endpoints[sender] = b["endpoint"]        # an Endpoint: direct or relay
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
                and self.joined_local and self.status != SessionStatus.JOINING):
            self._send_join(fresh=False)
        if epoch > self.epoch:
            # Someone failed over before us. Its evidence is not ours: nobody ends an epoch
            # for someone else (issue 14, item 3). If we coordinate that epoch, keep its
            # JOIN for when our own timeout takes us there; otherwise it changes nothing.
            if self.spec.coordinator(epoch) == self.me and sender != self.me:
                self._early_joins.setdefault(epoch, {})[sender] = b
            return
        c = self._coord
        if c is None:
            return  # not the coordinator of our epoch; a rejoin broadcast reached us
        if b["join_nonce"] is not None and epoch == self.epoch:
            held = c.join_nonces.get(sender)
            for_attempt = b["last_attempt"] + 1
            if held is not None and held[0] == for_attempt and held[1] != b["join_nonce"]:
                raise InvalidContribution("two different public nonces for one attempt")
            try:
                parse_pubnonce(b["join_nonce"], self.spec.signer_index_of(sender))
            except BlameError:
                if c.phase not in (Phase.DONE,):
                    self._coordinator_abort("invalid public nonce", (sender,))
                raise InvalidContribution("public nonce is not two valid points") from None
            c.join_nonces[sender] = (for_attempt, b["join_nonce"])
        c.joined.add(sender)
        c.max_attempt = max(c.max_attempt, b["last_attempt"])
        if c.phase == Phase.DONE:
            if c.final is not None:
                self._send(sender, MsgType.FINAL, epoch=self.epoch, attempt=c.attempt,
                           signature=c.final)
            return
        if c.phase in (Phase.NONCES, Phase.PSIGS):
            if b["fresh"]:
                self._start_attempt()       # it lost its nonce: everyone starts round 1 again
            elif c.phase == Phase.NONCES and sender != self.me:
                # It has not seen this attempt's READY (it came here later, on its own
                # timeout, or the READY was lost): tell it again.
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
        c.phase = Phase.NONCES
        c.nonces.clear()
        c.psigs.clear()
        c.signing = None
        early = {k: pn for k, (a, pn) in c.join_nonces.items() if a == attempt}
        c.join_nonces.clear()       # each was for one attempt: this one, or none
        self._arm_coord(self.config.round_timeout, Phase.NONCES)
        if len(early) == self.spec.n:
            # Every JOIN brought a nonce for this attempt: no READY, no NONCE round trip.
            for key in self.spec.participants:
                if not self._take_nonce(c, key, early[key]):
                    return
            self._nonces_complete(c)
            return
        self._broadcast(MsgType.READY, epoch=self.epoch, attempt=attempt)

    def _coord_for(self, b: dict, phase: Phase) -> CoordinatorState | None:
        c = self._coord
        if c is None or b["epoch"] != c.epoch or c.attempt != b["attempt"] or c.phase != phase:
            return None  # stale or early (a previous attempt or epoch): ignore, no blame
        return c

    def _on_nonce(self, sender: bytes, b: dict) -> None:
        c = self._coord_for(b, Phase.NONCES)
        if c is None:
            return
        old = c.nonces.get(sender)
        if old is not None and old != b["pubnonce"]:
            raise InvalidContribution("two different public nonces for one attempt")
        if not self._take_nonce(c, sender, b["pubnonce"]):
            raise InvalidContribution("public nonce is not two valid points")
        if len(c.nonces) == self.spec.n:
            self._nonces_complete(c)

    def _take_nonce(self, c: CoordinatorState, sender: bytes, pubnonce: bytes) -> bool:
        """Check and keep one public nonce; an invalid one aborts at once, naming its sender."""
        try:
            parse_pubnonce(pubnonce, self.spec.signer_index_of(sender))
        except BlameError:
            # Blame at once rather than after everyone else has answered.
            self._coordinator_abort("invalid public nonce", (sender,))
            return False
        c.nonces[sender] = pubnonce
        return True

    def _nonces_complete(self, c: CoordinatorState) -> None:
        ordered = [c.nonces[k] for k in self.spec.participants]
        try:
            c.signing = SigningSession.from_pubnonces(self.spec.keyagg, ordered, self.spec.message)
        except BlameError as exc:
            culprit = self.spec.participants[exc.index] if exc.index is not None else None
            self._coordinator_abort(f"invalid public nonce: {exc.reason}",
                                    (culprit,) if culprit else ())
            return
        c.phase = Phase.PSIGS
        self._arm_coord(self.config.round_timeout, Phase.PSIGS)
        self._broadcast(MsgType.NONCES, epoch=self.epoch, attempt=c.attempt, pubnonces=ordered,
                        aggnonce=c.signing.aggnonce)

    def _on_psig(self, sender: bytes, b: dict) -> None:
        c = self._coord_for(b, Phase.PSIGS)
        if c is None:
            return
        signer_index = self.spec.signer_index_of(sender)
        try:
            ok = c.signing.partial_sig_verify(b["psig"], c.nonces[sender], signer_index)
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
        c.phase = Phase.DONE
        c.final = sig
        if c.timer is not None:
            c.timer.cancel()
        self._emit_round2()
        self._broadcast(MsgType.FINAL, epoch=self.epoch, attempt=c.attempt, signature=sig)
