"""The one configuration object of bounds for the transport, session and coordinator layers.

Every number a peer can push against (sizes, counts, rates, waits) is a field
here with a documented default, so an operator or a test can tighten one bound
without touching protocol code, and a reviewer can audit all of them at once.
The defaults are chosen for a desktop wallet talking to a handful of strangers:
generous enough for 50 signers on loopback, strict enough that one hostile peer
cannot make a node allocate or wait without limit.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from . import constants as C


@dataclass(frozen=True)
class Musig2Config:
    # --- session size and lifetime -------------------------------------------------
    #: Most participants one session may have. The seed's anchor stops at 15; we test to 50.
    max_signers: int = 50
    #: Hard end of a session (seconds from creation), whatever its state.
    session_lifetime: float = 600.0
    #: How long the coordinator waits for every JOIN before aborting (names the missing ones).
    join_timeout: float = 300.0
    #: After a failover, how long the new coordinator waits for every JOIN (everyone had
    #: already approved; only a restarting participant may still be on its way back).
    rejoin_timeout: float = 30.0
    #: How long the coordinator waits for all public nonces / all partial signatures.
    round_timeout: float = 10.0
    #: Extra wait a participant grants the coordinator beyond ``round_timeout`` before it
    #: declares the coordinator silent and fails over to the next one in the election order.
    coordinator_grace: float = 5.0
    #: While waiting for READY a participant re-sends its JOIN this often; a failed
    #: delivery is how a dead coordinator is noticed before anyone is ready.
    heartbeat_interval: float = 5.0
    #: New attempts (fresh nonces for everyone) one session may go through: rejoins after
    #: a restart and coordinator failovers each start one. Bounds a griefing coordinator.
    max_attempts: int = 8
    #: Coordinator failovers one participant will perform before it gives up.
    max_failovers: int = 3
    #: Sessions one node keeps at once (memory bound against request spam).
    max_sessions: int = 64

    # --- transport ------------------------------------------------------------------
    #: Largest framed message accepted from a peer (bytes); larger ones are dropped.
    max_message_bytes: int = 256 * 1024
    #: TCP connect timeout to a peer (seconds).
    connect_timeout: float = 5.0
    #: Time to wait for a peer's answer to one request (seconds).
    request_timeout: float = 10.0
    #: Requests from one connection processed concurrently.
    max_concurrent_per_peer: int = 16
    #: Sustained messages per second accepted from one connection (token bucket rate).
    peer_rate_per_sec: float = 200.0
    #: Burst of messages accepted from one connection before the rate applies.
    peer_burst: int = 400
    #: Requests one connection may have awaiting an answer; a peer that pipelines more (or
    #: sends a JSON-RPC batch) is disconnected: each would cost us a task before any check.
    max_pending_per_peer: int = 128
    #: Idle outbound connections kept open (least recently used closed first).
    max_outbound_connections: int = 128
    #: Open inbound connections accepted at once.
    max_inbound_connections: int = 256
    #: Accepted difference between a message's timestamp and our clock (seconds).
    max_clock_skew: float = float(C.MAX_CLOCK_SKEW_S)
    #: Failed connection attempts (and failed handshakes) allowed per peer endpoint per
    #: minute, after a burst of ``endpoint_attempt_burst``: an endpoint named by many
    #: advertisements (somebody else's address) cannot be hammered through us.
    endpoint_attempts_per_minute: float = 20.0
    endpoint_attempt_burst: int = 6
    #: How long an endpoint whose listener failed the handshake for a key is ignored for that
    #: key (it answered with another key or another chain), and how long an endpoint that does
    #: not speak our protocol at all is ignored for every key.
    wrong_key_ignore_s: float = 3600.0
    dead_endpoint_ignore_s: float = 3600.0
    #: Endpoints (and endpoint/key pairs) whose dial state is remembered (oldest forgotten).
    max_dial_records: int = 4096
    #: Handshakes (one signature each) answered per second node-wide, after a burst: more are
    #: refused as busy (the dialer retries later), so hello floods cannot eat our CPU.
    hello_rate_per_sec: float = 100.0
    hello_burst: int = 200
    #: Invalid messages after which a peer is blocked (the anchor uses 10).
    block_after_invalid: int = 10
    #: Node-wide budget for traffic that does not verify (malformed, bad signature): once
    #: spent, a connection is closed at its first such message instead of its tenth.
    junk_rate_per_sec: float = 50.0
    junk_burst: int = 200
    #: How long a blocked participant key stays blocked (seconds).
    block_duration: float = 3600.0
    #: Anti-replay window, in messages of one (session, sender) stream: how many of one
    #: sender's messages in one session may overtake each other before an older one is
    #: refused (every exact replay is refused; see transport/guards.py).
    replay_window: int = 256

    # --- signing requests -----------------------------------------------------------
    #: Peer endpoints remembered (key -> host, port); oldest forgotten first. Every signed
    #: JOIN refreshes its sender's entry, so forgetting one costs at most a re-learn.
    max_known_endpoints: int = 4096
    #: Pushed signing requests are admitted after their signature is checked, on budgets
    #: (token buckets: per second, burst) chosen by who signed them (transport/admission.py).
    #: A known co-signer (a participant of a request we created or joined, or a peer added
    #: by the operator) has its own budget, untouched by anyone else's traffic:
    known_push_rate_per_sec: float = 20.0
    known_push_burst: int = 200
    #: A stranger's key has a small budget of its own ...
    stranger_push_rate_per_sec: float = 1.0
    stranger_push_burst: int = 5
    #: ... and strangers also share one per source address and one for the whole node, so
    #: that fresh keys (free to make) cannot multiply the work a flood costs us.
    stranger_push_source_rate_per_sec: float = 5.0
    stranger_push_source_burst: int = 20
    stranger_push_total_rate_per_sec: float = 10.0
    stranger_push_total_burst: int = 40
    #: Keys and source addresses whose push budgets are remembered (oldest forgotten).
    max_push_budgets: int = 4096
    #: Co-signer keys remembered as "known" for push admission (oldest forgotten).
    max_known_cosigners: int = 4096
    #: How often the node looks in the DHT for requests addressed to it that no push
    #: brought (a refused or lost push): the bound on how late a participant learns one.
    request_watch_interval: float = 10.0
    #: Largest (plaintext) transaction payload a request may carry.
    max_payload_bytes: int = 128 * 1024
    #: Signing requests remembered per node (pushed or found), oldest evicted first.
    max_known_requests: int = 256

    # --- relays (docs/network.md) ---------------------------------------------------
    #: Reservations a relay holds at once (one per unreachable client key).
    relay_max_reservations: int = 64
    #: A reservation lasts this long unless its client renews it (seconds); its byte and
    #: message budgets below start afresh each period.
    relay_reservation_ttl: float = 300.0
    #: Bytes (both ways) and messages one reservation may pass per period.
    relay_bytes_per_reservation: int = 8 * 1024 * 1024
    relay_messages_per_reservation: int = 4000
    #: Whole-relay budgets: bytes and messages per second (token buckets, bursts of 4 s).
    relay_total_bytes_per_sec: int = 2 * 1024 * 1024
    relay_total_messages_per_sec: int = 1000
    #: Largest relayed argument (decoded bytes); larger frames are refused unforwarded.
    #: Never more than fits hex-encoded in ``max_message_bytes`` (see ``relay_frame_limit``).
    relay_max_frame_bytes: int = 96 * 1024
    #: Deliveries in flight to one client at once.
    relay_max_inflight_per_reservation: int = 16
    #: How long a relay waits for its client's answer (below ``request_timeout``, so the
    #: sender hears "client silent" from the relay rather than timing out on the relay).
    relay_deliver_timeout: float = 8.0
    #: A relay client probes its relay (an echo through it) this often, and renews its
    #: reservation when a third of the TTL is left.
    relay_probe_interval: float = 20.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Musig2Config.{f.name} must be a positive number, got {value!r}")
        if self.max_signers < 2 or self.max_signers > C.MAX_SIGNERS:
            raise ValueError(f"max_signers must be within 2..{C.MAX_SIGNERS}")
        if self.max_payload_bytes >= self.max_message_bytes:
            raise ValueError("max_payload_bytes must leave room inside max_message_bytes")

    def with_(self, **changes) -> "Musig2Config":
        """A copy with some bounds changed (tests shorten the waits this way)."""
        return replace(self, **changes)

    @property
    def relay_frame_limit(self) -> int:
        """The relayed argument bound in force: hex doubles it, JSON wraps it."""
        return max(1, min(self.relay_max_frame_bytes, (self.max_message_bytes - 1024) // 2))

    @property
    def participant_wait(self) -> float:
        """How long a participant waits for the coordinator's next message in a round."""
        return self.round_timeout + self.coordinator_grace


DEFAULT_CONFIG = Musig2Config()
