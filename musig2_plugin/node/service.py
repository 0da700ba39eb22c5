"""``StandaloneNode``: one chain's DHT node, its remembered peers, and pluggable services.

A public node's first job is to be a stable place to join the DHT: it listens
on a fixed port (the chain's default unless told otherwise), joins through the
configured bootstrap nodes, the chain's shipped bootstrap list and the peers
it remembered at its last stop, stores and serves the chain's records like
any DHT node, and remembers its contacts again when it stops.

Other roles (the relay for unreachable wallets) are ``NodeService`` objects
handed to the node: each is started after the DHT is up, gets the node to reach
its DHT and settings, reports a status dict, and is stopped (in reverse order)
before the DHT, so a service never outlives the node it serves.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from ..dht import DhtConfig, DhtNode, PeersFile
from ..foundation.chain import Chain

log = logging.getLogger("musig2_plugin.node")


class NodeService(Protocol):
    """A role of the standalone node besides the DHT (e.g. a relay)."""

    name: str

    async def start(self, node: "StandaloneNode") -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict: ...


@dataclass(frozen=True)
class NodeSettings:
    chain: Chain
    listen_host: str = "0.0.0.0"
    port: int | None = None                     # None: the chain's default port
    bootstrap: Sequence[tuple[str, int]] = ()
    use_default_bootstrap: bool = True          # also the chain's shipped bootstrap list
    data_dir: Path | None = None                # remembered peers live here (None: not kept)
    dht: DhtConfig = field(default_factory=DhtConfig)
    status_interval: float = 600.0              # a status line in the log this often

    @property
    def listen_port(self) -> int:
        return self.chain.default_port if self.port is None else self.port

    @property
    def peers_path(self) -> Path | None:
        return None if self.data_dir is None else Path(self.data_dir) / "peers.json"


class StandaloneNode:
    def __init__(self, settings: NodeSettings, services: Sequence[NodeService] = ()) -> None:
        self.settings = settings
        self.services = list(services)
        self.dht: DhtNode | None = None
        self._started: list[NodeService] = []
        self._status_task: asyncio.Task | None = None

    async def start(self) -> tuple[str, int]:
        """Listen, join, start the services; returns the DHT's (host, port)."""
        s = self.settings
        peers = None if s.peers_path is None else PeersFile(s.peers_path, s.chain.name)
        self.dht = DhtNode(s.dht, chain=s.chain, peers_file=peers)
        remembered = [] if peers is None else list(peers.peers)
        if peers is not None and peers.problem:
            log.warning("remembered peers unusable (%s): starting from the bootstrap list",
                        peers.problem)
        boot = list(dict.fromkeys([tuple(a) for a in s.bootstrap] +
                                  (list(s.chain.default_bootstrap) if s.use_default_bootstrap
                                   else [])))
        await self.dht.start(s.listen_host, s.listen_port)   # joins remembered peers itself
        host, port = self.dht.address
        log.info("chain %s: DHT listening on %s:%d (udp), node id %s; %d remembered peers, "
                 "%d bootstrap nodes", s.chain.name, host, port, self.dht.node_id.hex(),
                 len(remembered), len(boot))
        others = [a for a in boot if a != (host, port)]
        if others:
            found = await self.dht.bootstrap(others)
            log.info("joined through the bootstrap nodes: %d nodes found", found)
        try:
            for service in self.services:
                await service.start(self)
                self._started.append(service)
                log.info("service %s started", service.name)
        except BaseException:
            await self.stop()
            raise
        self._status_task = asyncio.ensure_future(self._status_loop())
        log.info("ready: %d contacts", len(self.dht.contacts()))
        return host, port

    async def stop(self) -> None:
        """Stop the services (reverse order), then the DHT (which saves the peers)."""
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)
            self._status_task = None
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", service.name)
        if self.dht is not None:
            contacts = len(self.dht.contacts())
            await self.dht.stop()
            log.info("stopped; %d contacts remembered", contacts)
            self.dht = None

    def status(self) -> dict:
        out = {"chain": self.settings.chain.name, "running": self.dht is not None}
        if self.dht is not None:
            out.update(address=list(self.dht.address), node_id=self.dht.node_id.hex(),
                       contacts=len(self.dht.contacts()), dht=self.dht.stats)
        out["services"] = {s.name: s.status() for s in self._started}
        return out

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval)
            st = self.status()
            log.info("status: %d contacts, %d records", st.get("contacts", 0),
                     st.get("dht", {}).get("records", 0))
