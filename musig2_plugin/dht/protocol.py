"""kademlia protocol extended with validating multi-value record RPCs.

Added RPCs:

* ``store_record(nodeid, topic, record_bytes) -> status`` : validated store;
* ``find_records(nodeid, topic, cursor) -> {"records", "next", "nodes"}`` : one
  page of the topic's records (bounded so the reply fits one UDP datagram)
  plus, on the first page, the closest nodes we know (so it doubles as the
  iterative lookup step).

The inherited single-value ``store`` RPC is refused (anyone could otherwise
park unvalidated bytes on us) and ``find_value`` answers with nodes only.
Every datagram and RPC from the network is guarded: oversized datagrams,
undecodable ones, wrong argument types and rate excess are counted in
``stats`` and dropped, never raised into the event loop.
"""
from __future__ import annotations

import asyncio
import heapq
import ipaddress
import logging
import socket
import time
from collections import Counter, OrderedDict

from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from kademlia.storage import IStorage
from rpcudp.protocol import RPCProtocol

from .config import DhtConfig
from .ratelimit import RateLimiter
from .store import RecordStore, refusal

log = logging.getLogger(__name__)

ID_LEN = 20
REPLICATE_TOPICS = 32


def valid_id(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == ID_LEN


#: First byte of the node id a client-mode node sends (``mark ‖ id``, 21 bytes): serve it,
#: never put it in the routing table (it cannot receive datagrams). See docs/network.md.
CLIENT_ID_MARK = 0xC1


def client_id(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == ID_LEN + 1 and value[0] == CLIENT_ID_MARK \
        and valid_id(value[1:])


class RefusingStorage(IStorage):
    """Stand-in for kademlia's single-value storage: holds nothing, accepts nothing.

    ``kademlia.network.Server`` insists on a storage object (it republishes from
    it hourly); ours is always empty so only validated records live on a node.
    """

    def __init__(self, stats: Counter) -> None:
        self.stats = stats

    def __setitem__(self, key, value):
        self.stats[refusal("legacy_store")] += 1

    def __getitem__(self, key):
        raise KeyError(key)

    def get(self, key, default=None):
        return default

    def iter_older_than(self, seconds_old):
        return iter(())

    def __iter__(self):
        return iter(())


class RecordProtocol(KademliaProtocol):
    def __init__(self, source_node: Node, storage: IStorage, ksize: int, *,
                 records: RecordStore, config: DhtConfig) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = config.rpc_timeout
        self.records = records
        self.config = config
        self.stats = records.stats
        self.store_limiter = RateLimiter(config.store_rate_per_minute, 60.0, config.max_rate_sources)
        # Contacts that just failed to answer: other nodes keep naming them for a
        # while; walks still ask them but never wait on them (crawl.RecordCrawl).
        # Forgotten after ``unresponsive_ttl`` or as soon as they send us anything.
        self.unresponsive: OrderedDict[tuple, float] = OrderedDict()
        self.rpc_limiter = RateLimiter(config.rpc_rate_per_second, 1.0, config.max_rate_sources)
        #: Client mode (we cannot receive datagrams: behind a NAT): our requests carry a
        #: marked id, so peers answer them without adding our address to their tables.
        self.client_mode = False

    def wire_id(self, nodeid: bytes) -> bytes:
        """The node id our requests carry: marked in client mode."""
        if self.client_mode and nodeid == self.source_node.id:
            return bytes([CLIENT_ID_MARK]) + nodeid
        return nodeid

    def source_key(self, address) -> object:
        return address[0] if self.config.rate_limit_by == "host" else (address[0], address[1])

    # -- datagram guards ----------------------------------------------------------------
    def datagram_received(self, data, addr):
        if len(data) > self.config.max_datagram_bytes:
            self.stats[refusal("oversized_datagram")] += 1
            log.info("dropped %d-byte datagram from %s", len(data), addr)
            return
        if self.unresponsive:
            self.unresponsive.pop((addr[0], addr[1]), None)
        if data[:1] == b"\x00" and not self.rpc_limiter.allow(self.source_key(addr)):
            self.stats[refusal("rpc_rate_limited")] += 1
            return
        super().datagram_received(data, addr)

    async def _solve_datagram(self, datagram, address):
        try:
            await super()._solve_datagram(datagram, address)
        except Exception as exc:  # umsgpack raises many types on garbage
            self.stats[refusal("malformed_datagram")] += 1
            log.info("undecodable datagram from %s: %r", address, exc)

    async def _accept_request(self, msg_id, data, address):
        try:
            await super()._accept_request(msg_id, data, address)
        except Exception as exc:
            self.stats[refusal("bad_rpc")] += 1
            log.info("bad RPC from %s: %r", address, exc)

    def cancel_outstanding(self) -> None:
        """Resolve every pending call as "no answer" (used when the node stops)."""
        for future, timeout in list(self._outstanding.values()):
            timeout.cancel()
            if not future.done():
                future.set_result((False, None))
        self._outstanding.clear()

    def _welcome(self, sender, nodeid) -> bool:
        if client_id(nodeid):
            # A client-mode node: answered like anyone (rate limits apply as usual), but its
            # address is not one others could reach, so it never enters our routing table
            # (and we push it no replicas).
            self.stats["client_requests"] += 1
            return True
        if not valid_id(nodeid):
            self.stats[refusal("bad_node_id")] += 1
            return False
        self.welcome_if_new(Node(nodeid, sender[0], sender[1]))
        return True

    def neighbors(self, target: Node, k: int | None = None,
                  exclude: tuple | None = None) -> list[Node]:
        """The k contacts closest to ``target``, closest first.

        Replaces ``RoutingTable.find_neighbors``: its ``TableTraverser`` stops when
        the target's bucket is the last one and the bucket left of it is empty, so
        after bucket splits it can return one or no contact although the table
        holds dozens (seen in the 100-node churn benchmark: lookups found nothing).
        """
        k = k or self.router.ksize
        contacts = [n for bucket in self.router.buckets for n in bucket.get_nodes()
                    if n.id != target.id and (exclude is None or (n.ip, n.port) != tuple(exclude))]
        return heapq.nsmallest(k, contacts, key=lambda n: n.distance_to(target))

    # -- inherited RPCs, hardened -----------------------------------------------------
    def rpc_ping(self, sender, nodeid):
        if not self._welcome(sender, nodeid):
            return None
        return self.source_node.id

    def rpc_store(self, sender, nodeid, key, value):
        self.stats[refusal("legacy_store")] += 1
        return False

    def rpc_find_node(self, sender, nodeid, key):
        if not valid_id(key) or not self._welcome(sender, nodeid):
            return []
        neighbors = self.neighbors(Node(key), exclude=(sender[0], sender[1]))
        return [tuple(n) for n in neighbors]

    def rpc_find_value(self, sender, nodeid, key):
        return self.rpc_find_node(sender, nodeid, key)

    # -- record RPCs -----------------------------------------------------------------------
    def rpc_store_record(self, sender, nodeid, topic, data):
        if not self._welcome(sender, nodeid):
            return refusal("bad_node_id")
        if not self.store_limiter.allow(self.source_key(sender)):
            self.stats[refusal("rate_limited")] += 1
            log.info("store from %s over its rate budget", sender)
            return refusal("rate_limited")
        if not isinstance(data, bytes):
            self.stats[refusal("MalformedRecord")] += 1
            return refusal("MalformedRecord")
        return self.records.put_bytes(topic, data, source=sender)

    def rpc_find_records(self, sender, nodeid, topic, cursor):
        if not valid_id(topic) or not isinstance(cursor, int) or cursor < 0:
            self.stats[refusal("bad_find")] += 1
            return None
        if not self._welcome(sender, nodeid):
            return None
        records = self.records.get_encoded(topic)
        budget = self.config.max_response_bytes
        nodes = []
        if cursor == 0:
            neighbors = self.neighbors(Node(topic), exclude=(sender[0], sender[1]))
            nodes = [tuple(n) for n in neighbors]
            budget -= sum(ID_LEN + len(n[1]) + 8 for n in nodes)
        page, index = [], cursor
        while index < len(records):
            data = records[index]
            if page and len(data) + 5 > budget:
                break
            page.append(data)
            budget -= len(data) + 5
            index += 1
        return {"records": page, "next": index if index < len(records) else None, "nodes": nodes}

    # -- client side ----------------------------------------------------------------------
    # Peers' replies name other nodes. A name that is not an IP literal of our
    # socket's family would make ``sendto`` fail, and asyncio closes a datagram
    # transport on a failed send: one lying peer could kill the node. So every
    # reply is sanitized before kademlia's crawlers and router see it.
    def contact_ok(self, ip: object, port: object) -> bool:
        if not isinstance(ip, str) or not isinstance(port, int) or not 0 < port < 65536:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        family = socket.AF_INET
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            family = sock.family if sock is not None else family
        return addr.version == (6 if family == socket.AF_INET6 else 4)

    def sanitize_nodes(self, nodes: object, limit: int) -> list[tuple]:
        if not isinstance(nodes, list):
            return []
        out, bad = [], 0
        for item in nodes[:limit]:
            if (isinstance(item, (list, tuple)) and len(item) == 3 and valid_id(item[0])
                    and self.contact_ok(item[1], item[2])):
                out.append((item[0], item[1], item[2]))
            else:
                bad += 1
        if bad or len(nodes) > limit:
            self.stats[refusal("bad_contacts")] += 1
        return out

    def is_unresponsive(self, addr: tuple) -> bool:
        since = self.unresponsive.get(addr)
        if since is None:
            return False
        if time.monotonic() - since > self.config.unresponsive_ttl:
            del self.unresponsive[addr]
            return False
        return True

    def handle_call_response(self, result, node):
        if not result[0] and node.ip is not None:
            self.unresponsive[(node.ip, node.port)] = time.monotonic()
            self.unresponsive.move_to_end((node.ip, node.port))
            while len(self.unresponsive) > self.config.max_rate_sources:
                self.unresponsive.popitem(last=False)
        return super().handle_call_response(result, node)

    async def ping(self, address, nodeid):
        ok, value = await RPCProtocol.__getattr__(self, "ping")(address, self.wire_id(nodeid))
        if ok and not valid_id(value):
            self.stats[refusal("bad_reply")] += 1
            return (False, None)
        return (ok, value)

    async def call_find_node(self, node_to_ask, node_to_find):
        ok, value = await self.find_node((node_to_ask.ip, node_to_ask.port),
                                         self.wire_id(self.source_node.id), node_to_find.id)
        if ok:
            value = self.sanitize_nodes(value, self.router.ksize)
        return self.handle_call_response((ok, value), node_to_ask)

    async def call_find_value(self, node_to_ask, node_to_find):
        return await self.call_find_node(node_to_ask, node_to_find)

    async def call_store_record(self, node: Node, topic: bytes, data: bytes):
        result = await self.store_record((node.ip, node.port), self.wire_id(self.source_node.id),
                                         topic, data)
        return self.handle_call_response(result, node)

    async def call_find_records(self, node: Node, target: Node, cursor: int = 0):
        ok, value = await self.find_records((node.ip, node.port), self.wire_id(self.source_node.id),
                                            target.id, cursor)
        if ok:
            if page_shape_ok(value):
                value = dict(value, nodes=self.sanitize_nodes(value["nodes"], self.router.ksize))
            else:
                self.stats[refusal("bad_reply")] += 1
                ok, value = False, None
        return self.handle_call_response((ok, value), node)

    def welcome_if_new(self, node: Node) -> None:
        """Add a new contact; push it (a bounded number of) records it should now hold.

        As in the paper (section 2.5): for topics where the newcomer is among the k
        closest we know and we are closer than all of them, hand it our copies. Only
        the ``REPLICATE_TOPICS`` topics nearest the newcomer are examined (it can only
        be among the k closest of topics near it), so meeting a node costs O(topics)
        XORs, not a neighbour search per stored record.
        """
        if not self.router.is_new_node(node):
            return
        pushed = 0
        topics = heapq.nsmallest(REPLICATE_TOPICS, self.records.topics(),
                                 key=lambda t: int.from_bytes(t, "big") ^ node.long_id)
        for topic in topics:
            if pushed >= self.config.replicate_max:
                break
            keynode = Node(topic)
            neighbors = self.neighbors(keynode)
            if neighbors:
                new_close = node.distance_to(keynode) < neighbors[-1].distance_to(keynode)
                we_closest = self.source_node.distance_to(keynode) < neighbors[0].distance_to(keynode)
            if not neighbors or (new_close and we_closest):
                for data in self.records.get_encoded(topic)[: self.config.replicate_max - pushed]:
                    asyncio.ensure_future(self.call_store_record(node, topic, data))
                    pushed += 1
        self.router.add_contact(node)


def page_shape_ok(value: object) -> bool:
    """A find_records reply from a peer has the shape we expect (types only)."""
    if not isinstance(value, dict):
        return False
    records, nxt, nodes = value.get("records"), value.get("next"), value.get("nodes")
    if not isinstance(records, list) or not all(isinstance(r, bytes) for r in records):
        return False
    if nxt is not None and (not isinstance(nxt, int) or nxt < 0):
        return False
    return isinstance(nodes, list)


def parse_nodes(nodes: list) -> list[Node]:
    """Nodes of a reply already passed through ``sanitize_nodes``."""
    return [Node(*item) for item in nodes]

