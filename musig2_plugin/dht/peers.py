"""Remembered good peers: the DHT's answer to Bitcoin Core's peers.dat.

A node that knew the network once should not depend on a bootstrap node
again: at stop (and every few minutes) it writes the contacts of its routing
table (nodes that answered it) to a small JSON file, and the next start joins
through them. Bootstrap nodes then matter only for a first start.

The file is local, but a corrupt, foreign or oversized one must never stop a
node: anything unreadable is ignored with one log line and a fresh list is
written at the next save. Entries are bounded in number and checked one by one
(a host string and a port in 1..65535), and the file names its chain, so the
peers of a testnet node are never used by a mainnet one. It also keeps the
node id, so a restarted node takes back its place in other nodes' tables.
Writes go to a temporary file renamed over the old one: a crash mid-write
leaves the previous list.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..foundation import constants as C

log = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass
class PeersFile:
    """The remembered peers of one node of one chain, stored at ``path``."""

    path: Path
    chain_name: str
    max_peers: int = C.MAX_REMEMBERED_PEERS
    node_id: bytes | None = None
    peers: list[Address] = field(default_factory=list)
    #: Why the last ``load`` found nothing usable (None: it read the file, or there was none).
    problem: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def load(self) -> list[Address]:
        """Read the file (if any); returns the remembered peers, newest first."""
        self.problem = None
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        except OSError as exc:
            return self._unusable(f"cannot read it: {exc}")
        if size > C.MAX_PEERS_FILE_BYTES:
            return self._unusable(f"{size} bytes, more than {C.MAX_PEERS_FILE_BYTES}")
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            return self._unusable(f"not JSON: {exc}")
        if not isinstance(data, dict) or data.get("version") != C.PEERS_FILE_VERSION:
            return self._unusable("unknown format version")
        if data.get("chain") != self.chain_name:
            return self._unusable(f"peers of chain {data.get('chain')!r}, not {self.chain_name}")
        node_id = data.get("node_id")
        if isinstance(node_id, str) and len(node_id) == 40:
            try:
                self.node_id = bytes.fromhex(node_id)
            except ValueError:
                self.node_id = None
        peers: list[Address] = []
        raw = data.get("peers")
        for entry in raw if isinstance(raw, list) else []:
            if len(peers) >= self.max_peers:
                break
            if isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str) \
                    and 0 < len(entry[0]) <= C.MAX_HOST_BYTES and isinstance(entry[1], int) \
                    and not isinstance(entry[1], bool) and 0 < entry[1] < 65536:
                addr = (entry[0], entry[1])
                if addr not in peers:
                    peers.append(addr)
        self.peers = peers
        return list(peers)

    def _unusable(self, why: str) -> list[Address]:
        self.problem = why
        log.warning("ignoring the remembered peers in %s: %s", self.path, why)
        self.peers = []
        return []

    def remember(self, contacts: list[Address]) -> None:
        """Put ``contacts`` (live now) first, keep older entries after them, bounded."""
        merged = list(dict.fromkeys([(str(h), int(p)) for h, p in contacts] + self.peers))
        self.peers = merged[: self.max_peers]

    def save(self) -> None:
        """Write atomically (temporary file + rename); errors are logged, never raised."""
        body = {"version": C.PEERS_FILE_VERSION, "chain": self.chain_name,
                "node_id": None if self.node_id is None else self.node_id.hex(),
                "saved_at": int(time.time()),
                "peers": [[h, p] for h, p in self.peers[: self.max_peers]]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".peers-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(body, f)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("could not save the remembered peers to %s: %s", self.path, exc)
