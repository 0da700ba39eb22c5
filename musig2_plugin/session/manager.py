"""Routes admitted envelopes to their Session objects and bounds how many exist.

A session object is created either by our own join or by the first message
that arrives for a request we know (a JOIN can reach the coordinator before
its user has approved). Messages for requests we do not know are refused by
the transport's membership check before any state is allocated.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

from ..foundation.config import Musig2Config
from ..foundation.events import EventEmitter
from ..transport import Envelope, Transport, UnknownSession
from .machine import Session
from .messages import decode_body
from .spec import SessionSpec, SpecError

log = logging.getLogger(__name__)


class SessionLimit(UnknownSession):
    """Too many open sessions: the message is refused (not the sender's fault, not charged)."""


class SessionManager:
    def __init__(self, seckey: bytes, config: Musig2Config, emitter: EventEmitter,
                 endpoints: dict) -> None:
        self._seckey = seckey
        self.config = config
        self.emitter = emitter
        self.endpoints = endpoints
        self.transport: Transport | None = None
        self.specs: OrderedDict[bytes, SessionSpec] = OrderedDict()
        self.sessions: OrderedDict[bytes, Session] = OrderedDict()
        #: Factory hook so a test can run a deliberately faulty participant (see tests).
        self.session_class = Session

    def attach(self, transport: Transport) -> None:
        self.transport = transport

    # -- transport callbacks ------------------------------------------------------
    def membership(self, session_id: bytes):
        spec = self.specs.get(session_id)
        return None if spec is None else spec.participants

    async def on_envelope(self, env: Envelope) -> None:
        spec = self.specs[env.session_id]
        # Parse first: a malformed body must not leave a placeholder session behind.
        body = decode_body(env.msg_type, env.body, spec.n)
        session = self.sessions.get(env.session_id)
        if session is None:
            session = self._create(spec, auto=True)
        await session.handle(env, body)

    # -- API ---------------------------------------------------------------------------
    def register(self, spec: SessionSpec) -> None:
        if self.transport.pubkey not in spec.participants:
            raise ValueError("we are not a participant of this session")
        held = self.specs.get(spec.session_id)
        if held is not None and not held.signs_the_same(spec):
            raise SpecError("a different signing request already holds this session id")
        if held is None:
            self.specs[spec.session_id] = spec
            # Forget the oldest specs nobody is working on (request spam must not evict a
            # session that is running).
            excess = len(self.specs) - self.config.max_sessions * 4
            for sid in [sid for sid in self.specs if sid != spec.session_id
                        and (sid not in self.sessions or self.sessions[sid].closed)][:max(excess, 0)]:
                del self.specs[sid]
                self.sessions.pop(sid, None)
                self.transport.replay.forget_session(sid)
        # spec.endpoints (the request's hints) stay with the spec: see endpoints.py.

    def get(self, session_id: bytes) -> Session | None:
        return self.sessions.get(session_id)

    def session_for(self, spec: SessionSpec, *, auto: bool = True) -> Session:
        self.register(spec)
        session = self.sessions.get(spec.session_id)
        if session is not None and not session.spec.signs_the_same(spec):
            raise SpecError("the session here signs something else than the approved request")
        if session is None:
            session = self._create(spec, auto=auto, local=True)
        elif not auto:
            session.set_auto(False)
        return session

    def room_for(self, specs) -> bool:
        """Whether joining all of ``specs`` fits the session bound (placeholders we have not
        joined can be evicted). Checked before joining a request so that a request is
        joined whole or not at all: half its inputs signed is state nobody can use."""
        live = [s for s in self.sessions.values() if not s.closed]
        busy = sum(1 for s in live if s.joined_local)
        needed = sum(1 for spec in specs if spec.session_id not in self.sessions)
        return busy + needed <= self.config.max_sessions

    def _create(self, spec: SessionSpec, *, auto: bool, local: bool = False) -> Session:
        """``local``: our user joins (approved). A session a peer's message created is only
        a placeholder until then, and anyone can create those (a signing request naming us
        and a key of their own suffice): they must never crowd out a session we join."""
        live = [s for s in self.sessions.values() if not s.closed]
        if len(live) >= self.config.max_sessions and local:
            unjoined = next((s for s in live if not s.joined_local), None)
            if unjoined is not None:
                del self.sessions[unjoined.sid]
                unjoined.stop()
                live.remove(unjoined)
        if len(live) >= self.config.max_sessions:
            raise SessionLimit("too many open sessions")
        while len(self.sessions) >= self.config.max_sessions:
            oldest = next((sid for sid, s in self.sessions.items() if s.closed), None)
            if oldest is None:
                break
            del self.sessions[oldest]
        session = self.session_class(spec, seckey=self._seckey, transport=self.transport,
                                     config=self.config, emitter=self.emitter,
                                     endpoints=self.endpoints, auto=auto,
                                     on_closed=self._closed)
        self.sessions[spec.session_id] = session
        return session

    def _closed(self, session: Session) -> None:
        log.debug("session %s closed: %s", session.sid.hex()[:8], session.status)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for messages closed sessions are still delivering."""
        import asyncio
        pending = [t for s in self.sessions.values() if s.closed for t in s._tasks]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def stop(self) -> None:
        for s in self.sessions.values():
            s.stop()
