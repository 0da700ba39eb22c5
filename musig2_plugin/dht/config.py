"""Tunables of a DHT node, defaulting to the protocol constants.

Tests and benchmarks shrink timeouts and intervals through this object instead
of sleeping for production-length periods.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from ..foundation import constants as C


@dataclass(frozen=True)
class DhtConfig:
    ksize: int = C.DHT_KSIZE
    alpha: int = C.DHT_ALPHA
    rpc_timeout: float = C.DHT_RPC_TIMEOUT_S
    max_records_per_topic: int = C.DHT_MAX_RECORDS_PER_TOPIC
    max_records_per_source: int | None = None  # per source group and topic; None: 1/8 of a topic
    max_topics: int = C.DHT_MAX_TOPICS
    max_total_records: int = C.DHT_MAX_TOTAL_RECORDS
    max_store_bytes: int = C.DHT_MAX_STORE_BYTES
    max_response_bytes: int = C.DHT_MAX_RESPONSE_BYTES
    max_datagram_bytes: int = C.DHT_MAX_DATAGRAM_BYTES
    max_pages: int = C.DHT_MAX_PAGES
    store_rate_per_minute: int = C.DHT_STORE_RATE_PER_MINUTE
    rpc_rate_per_second: int = C.DHT_RPC_RATE_PER_SECOND
    max_rate_sources: int = C.DHT_MAX_RATE_SOURCES
    # "host": one budget per IP address (production: ports are free to an attacker).
    # "address": per (IP, port); only for many honest nodes sharing one IP, as in
    # the loopback test networks, where a per-IP budget would be shared by all.
    rate_limit_by: Literal["host", "address"] = "host"
    prune_interval: float = C.DHT_PRUNE_INTERVAL_S
    replicate_max: int = 64          # records pushed to one newly met close node
    unresponsive_ttl: float = C.DHT_UNRESPONSIVE_TTL_S
    max_outstanding: int = C.DHT_MAX_OUTSTANDING
    max_outstanding_per_peer: int = C.DHT_MAX_OUTSTANDING_PER_PEER
    peers_save_interval: float = C.PEERS_SAVE_INTERVAL_S   # remembered peers written this often
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if self.rate_limit_by not in ("host", "address"):
            raise ValueError("rate_limit_by must be 'host' or 'address'")
        if self.ksize < 1 or self.alpha < 1 or self.rpc_timeout <= 0:
            raise ValueError("ksize, alpha and rpc_timeout must be positive")
