"""kademlia protocol extended with validating multi-value record RPCs.

Added RPCs:

* ``store_record(nodeid, topic, record_bytes) -> status`` : validated store;
* ``find_records(nodeid, topic, cursor) -> {"records", "next", "nodes"}`` : one
  page of the topic's records (bounded so the reply fits one UDP datagram)
  plus, on the first page, the closest nodes we know (so it doubles as the
  iterative lookup step).

No amplification (docs/records-and-dht.md, "Abuse model"): a UDP source address
is unproven until it echoes a *cookie* (``HMAC(secret, ip, port)``, secret
rotated every ``DHT_COOKIE_ROTATE_S``), as DNS cookies and QUIC address
validation do. ``find_node``, ``find_records``, ``store_record`` and ``leave``
from a source without a valid cookie get only ``{"cookie": ...}``, smaller than
the request; clients cache cookies per address and retry once. Only proven
sources (a valid cookie, or an answer to our own RPC) enter the routing table or
receive replicated records. Outstanding RPCs are bounded per peer and in total.

Joins that do not wait on the dead: round-trip times of answered RPCs feed an
adaptive soft timeout (``soft_timeout``) that walks use; contacts that timed out
or said ``leave`` are not handed out in replies.

The inherited single-value ``store`` RPC is refused (anyone could otherwise
park unvalidated bytes on us) and ``find_value`` answers with nodes only.
Every datagram and RPC from the network is guarded: oversized datagrams,
undecodable ones, wrong argument types and rate excess are counted in
``stats`` and dropped, never raised into the event loop.
"""
from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import ipaddress
import itertools
import logging
import os
import socket
import time
from collections import Counter, OrderedDict

import umsgpack

from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from kademlia.storage import IStorage

from ..foundation import constants as C
from .config import DhtConfig
from .ratelimit import RateLimiter
from .store import RecordStore, refusal

log = logging.getLogger(__name__)

ID_LEN = 20
REPLICATE_TOPICS = 32


MAX_SLOT_CURSOR = 1 + 32 + 32  # the longest slot ("R" || creator || request id)
COOKIE_LEN = 16
BUSY = "busy"                  # result of a call refused locally by the outstanding-RPC bounds
MAX_REQUEST_BYTES = 8192       # rpcudp's own cap on a request's packed arguments


def cookie_reply(value: object) -> bool:
    """A reply saying "prove your address first" (an unverified request's only answer)."""
    return isinstance(value, dict) and set(value) == {"cookie"} and \
        isinstance(value["cookie"], bytes) and len(value["cookie"]) == COOKIE_LEN


def valid_id(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == ID_LEN


def source_group(address: object, mode: str) -> object:
    """The group a storing peer's records are counted under for quotas and eviction.

    "host" (production): the /24 of an IPv4 address or the /48 of an IPv6 one, since
    an attacker's neighbouring addresses are as cheap as its ports. "address": the
    (IP, port) pair, for test networks where every honest node shares 127.0.0.1.
    """
    if not isinstance(address, tuple) or len(address) < 2:
        return address
    if mode == "address":
        return (address[0], address[1])
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return address[0]
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


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
        self.slow: OrderedDict[tuple, float] = OrderedDict()  # silent past a soft timeout
        self.departed: OrderedDict[tuple, None] = OrderedDict()  # proven peers that said leave
        self._secrets = [os.urandom(32), os.urandom(32)]   # current, previous
        self._rotated_at = time.monotonic()
        self._cookies: OrderedDict[tuple, bytes] = OrderedDict()  # peers' cookies for us
        self._per_peer: Counter = Counter()                       # outstanding calls per address
        self._sent: dict[bytes, tuple[float, tuple]] = {}         # msg id -> (sent at, address)
        self.srtt: float | None = None                            # smoothed RTT of answered calls
        self.rttvar = 0.0

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
        if self.slow:
            self.slow.pop((addr[0], addr[1]), None)
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

    def _accept_response(self, msg_id, data, address):
        sent = self._sent.get(msg_id)
        if sent is not None and tuple(address[:2]) != sent[1]:
            self.stats[refusal("reply_from_elsewhere")] += 1  # not a round trip: ignore
            return
        if sent is not None and msg_id in self._outstanding:
            self._sample_rtt(time.monotonic() - sent[0])
        super()._accept_response(msg_id, data, address)

    def _timeout(self, msg_id):
        if msg_id in self._outstanding:
            future, _ = self._outstanding.pop(msg_id)
            if not future.done():
                future.set_result((False, None))

    def _sample_rtt(self, rtt: float) -> None:
        """RFC 6298-style smoothing of round-trip times (the walks' soft timeout)."""
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def soft_timeout(self) -> float:
        """How long a walk waits on one query before asking the next contact: four
        deviations above the smoothed RTT, within [DHT_MIN_SOFT_TIMEOUT_S, min(0.25 s,
        rpc_timeout / 4)]. Before any sample, the upper bound."""
        ceiling = min(C.DHT_MAX_SOFT_TIMEOUT_S, self._wait_timeout / 4)
        if self.srtt is None:
            return ceiling
        return max(C.DHT_MIN_SOFT_TIMEOUT_S, min(ceiling, self.srtt + 4 * self.rttvar))

    def _call(self, address: tuple, name: str, *args) -> asyncio.Future:
        """Send one request (rpcudp's wire format), within the outstanding-call bounds.

        Over the bounds the call is not sent and resolves to ``(False, BUSY)`` at once,
        which ``handle_call_response`` does not count against the peer."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        addr = (address[0], address[1])
        if self.transport is None or len(self._outstanding) >= self.config.max_outstanding or \
                self._per_peer[addr] >= self.config.max_outstanding_per_peer:
            self.stats[refusal("outstanding_full")] += 1
            future.set_result((False, BUSY))
            return future
        data = umsgpack.packb([name, list(args)])
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError(f"{name} request of {len(data)} bytes exceeds {MAX_REQUEST_BYTES}")
        msg_id = hashlib.sha1(os.urandom(32)).digest()
        self.transport.sendto(b"\x00" + msg_id + data, addr)
        handle = loop.call_later(self._wait_timeout, self._timeout, msg_id)
        self._outstanding[msg_id] = (future, handle)
        self._sent[msg_id] = (time.monotonic(), addr)
        self._per_peer[addr] += 1

        def settled(_f, msg_id=msg_id, addr=addr) -> None:
            self._sent.pop(msg_id, None)
            self._per_peer[addr] -= 1
            if self._per_peer[addr] <= 0:
                del self._per_peer[addr]
        future.add_done_callback(settled)
        return future

    async def _ask(self, address: tuple, name: str, *args, tail: tuple = ()):
        """A cookie-protected call: send our cached cookie for ``address``; if the peer
        answers with a (new) cookie instead, cache it and ask once more. ``tail``:
        optional arguments after the cookie."""
        addr = (address[0], address[1])
        ok, value = await self._call(addr, name, *args, self._cookies.get(addr), *tail)
        if ok and cookie_reply(value):
            self._remember_cookie(addr, value["cookie"])
            ok, value = await self._call(addr, name, *args, value["cookie"], *tail)
            if ok and cookie_reply(value):
                self.stats[refusal("cookie_refused")] += 1
                return (False, BUSY)
        return (ok, value)

    def _remember_cookie(self, addr: tuple, cookie: bytes) -> None:
        self._cookies[addr] = cookie
        self._cookies.move_to_end(addr)
        while len(self._cookies) > self.config.max_rate_sources:
            self._cookies.popitem(last=False)

    # -- address validation (server side) -------------------------------------------
    def _cookie_for(self, sender: tuple, secret: bytes) -> bytes:
        msg = f"{sender[0]}|{sender[1]}".encode()
        return hmac.new(secret, msg, hashlib.sha256).digest()[:COOKIE_LEN]

    def cookie(self, sender: tuple) -> bytes:
        now = time.monotonic()
        if now - self._rotated_at > C.DHT_COOKIE_ROTATE_S:
            self._secrets = [os.urandom(32), self._secrets[0]]
            self._rotated_at = now
        return self._cookie_for(sender, self._secrets[0])

    def proven(self, sender: tuple, cookie: object) -> bool:
        """Whether ``cookie`` is the one we gave ``sender`` (current or previous secret)."""
        if not isinstance(cookie, bytes) or len(cookie) != COOKIE_LEN:
            return False
        self.cookie(sender)  # rotates if due
        return any(hmac.compare_digest(cookie, self._cookie_for(sender, s)) for s in self._secrets)

    def _challenge(self, sender: tuple) -> dict:
        self.stats["cookie_challenges"] += 1
        return {"cookie": self.cookie(sender)}

    def cancel_outstanding(self) -> None:
        """Resolve every pending call as "no answer" (used when the node stops)."""
        for future, timeout in list(self._outstanding.values()):
            timeout.cancel()
            if not future.done():
                future.set_result((False, None))
        self._outstanding.clear()

    def _welcome(self, sender, nodeid, proven: bool = True) -> bool:
        """Checks the claimed node id; a *proven* sender also becomes a contact (and may
        receive replicated records). An unproven one never does: its address may be
        spoofed, and pushing to it would make us a reflector."""
        if not valid_id(nodeid):
            self.stats[refusal("bad_node_id")] += 1
            return False
        if proven:
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
                    if n.id != target.id and (exclude is None or (n.ip, n.port) != tuple(exclude))
                    and not self.is_dead((n.ip, n.port))]  # dead ones are not handed out
        return heapq.nsmallest(k, contacts, key=lambda n: n.distance_to(target))

    # -- inherited RPCs, hardened -----------------------------------------------------
    def rpc_ping(self, sender, nodeid, cookie=None):
        # the answer (our id) is no larger than the request: safe for any source
        if not self._welcome(sender, nodeid, self.proven(sender, cookie)):
            return None
        return self.source_node.id

    def rpc_leave(self, sender, nodeid, cookie=None):
        """A proven neighbour says it is stopping: forget it and stop handing it out."""
        if not valid_id(nodeid):
            self.stats[refusal("bad_node_id")] += 1
            return None
        if not self.proven(sender, cookie):
            return None  # a spoofed "leave" must not evict anyone; no reply is smallest
        self.router.remove_contact(Node(nodeid, sender[0], sender[1]))
        self.unresponsive[(sender[0], sender[1])] = time.monotonic()
        # a proven peer that left cleanly is worth remembering for a restart (peers file)
        self.departed[(sender[0], sender[1])] = None
        self.departed.move_to_end((sender[0], sender[1]))
        while len(self.departed) > C.DHT_LEAVE_NOTIFY:
            self.departed.popitem(last=False)
        self.stats["neighbours_left"] += 1
        return True

    def rpc_store(self, sender, nodeid, key, value):
        self.stats[refusal("legacy_store")] += 1
        return False

    def rpc_find_node(self, sender, nodeid, key, cookie=None):
        if not valid_id(key) or not valid_id(nodeid):
            self.stats[refusal("bad_find")] += 1
            return []
        if not self.proven(sender, cookie):
            return self._challenge(sender)
        self._welcome(sender, nodeid)
        neighbors = self.neighbors(Node(key), exclude=(sender[0], sender[1]))
        return [tuple(n) for n in neighbors]

    def rpc_find_value(self, sender, nodeid, key, cookie=None):
        return self.rpc_find_node(sender, nodeid, key, cookie)

    # -- record RPCs -----------------------------------------------------------------------
    def rpc_store_record(self, sender, nodeid, topic, data, cookie=None):
        if not valid_id(nodeid):
            self.stats[refusal("bad_node_id")] += 1
            return refusal("bad_node_id")
        if not self.proven(sender, cookie):  # quotas per source need a source that is real
            return self._challenge(sender)
        self._welcome(sender, nodeid)
        if not self.store_limiter.allow(self.source_key(sender)):
            self.stats[refusal("rate_limited")] += 1
            log.info("store from %s over its rate budget", sender)
            return refusal("rate_limited")
        if not isinstance(data, bytes):
            self.stats[refusal("MalformedRecord")] += 1
            return refusal("MalformedRecord")
        return self.records.put_bytes(topic, data, source=sender)

    def rpc_find_records(self, sender, nodeid, topic, cursor, cookie=None, limit=None):
        """One page of ``topic``'s records from ``cursor``: an index into the slot order
        (0 = first page, which also carries the closest contacts) or a slot (bytes) to
        start from, so searchers can sample from a random point or read one slot."""
        if not valid_id(topic) or not cursor_ok(cursor) or not valid_id(nodeid):
            self.stats[refusal("bad_find")] += 1
            return None
        if not self.proven(sender, cookie):
            return self._challenge(sender)
        self._welcome(sender, nodeid)
        first = cursor == 0 or isinstance(cursor, bytes)
        start = self.records.index_of(topic, cursor) if isinstance(cursor, bytes) else cursor
        total = self.records.count(topic)
        budget = self.config.max_response_bytes
        nodes = []
        if first:
            neighbors = self.neighbors(Node(topic), exclude=(sender[0], sender[1]))
            nodes = [tuple(n) for n in neighbors]
            budget -= sum(ID_LEN + len(n[1]) + 8 for n in nodes)
        # from a slot, the page wraps around to the first slot (a sample from a random
        # point is a full page even near the end)
        rows = self.records.iter_from(topic, start)
        if isinstance(cursor, bytes) and start > 0:
            rows = itertools.chain(rows, itertools.takewhile(
                lambda row: row[0] < start, self.records.iter_from(topic, 0)))
        page, index = [], None
        for pos, data in rows:
            if page and (len(data) + 5 > budget or (limit is not None and len(page) >= limit)):
                index = pos
                break
            page.append(data)
            budget -= len(data) + 5
        if index is not None and index >= total:
            index = None
        return {"records": page, "next": index, "nodes": nodes}

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
        """Timed out, said leave, or silent past a walk's soft timeout (walks: suspects)."""
        if addr in self.slow:
            if time.monotonic() - self.slow[addr] <= self.config.unresponsive_ttl:
                return True
            del self.slow[addr]
        return self.is_dead(addr)

    def is_dead(self, addr: tuple) -> bool:
        """Timed out or said leave (not handed out in replies)."""
        since = self.unresponsive.get(addr)
        if since is None:
            return False
        if time.monotonic() - since > self.config.unresponsive_ttl:
            del self.unresponsive[addr]
            return False
        return True

    def suspect(self, node: Node) -> None:
        """Mark a contact that let a query pass the soft timeout: walks stop giving it a
        slot and replies stop handing it out until it sends us anything (a live but slow
        node clears itself with its late answer, see ``datagram_received``)."""
        addr = (node.ip, node.port)
        if addr not in self.slow:
            self.slow[addr] = time.monotonic()
            while len(self.slow) > self.config.max_rate_sources:
                self.slow.popitem(last=False)

    def handle_call_response(self, result, node):
        if result == (False, BUSY):
            return result  # not sent (our bounds) or refused: says nothing about the peer
        if not result[0] and node.ip is not None:
            self.unresponsive[(node.ip, node.port)] = time.monotonic()
            self.unresponsive.move_to_end((node.ip, node.port))
            while len(self.unresponsive) > self.config.max_rate_sources:
                self.unresponsive.popitem(last=False)
        return super().handle_call_response(result, node)

    async def ping(self, address, nodeid):
        ok, value = await self._call(address, "ping", nodeid, self._cookies.get(tuple(address[:2])))
        if ok and not valid_id(value):
            self.stats[refusal("bad_reply")] += 1
            return (False, None)
        return (ok, value)

    async def call_find_node(self, node_to_ask, node_to_find):
        ok, value = await self._ask((node_to_ask.ip, node_to_ask.port), "find_node",
                                    self.source_node.id, node_to_find.id)
        if ok:
            value = self.sanitize_nodes(value, self.router.ksize)
        return self.handle_call_response((ok, value), node_to_ask)

    async def call_find_value(self, node_to_ask, node_to_find):
        return await self.call_find_node(node_to_ask, node_to_find)

    async def call_store_record(self, node: Node, topic: bytes, data: bytes):
        result = await self._ask((node.ip, node.port), "store_record", self.source_node.id, topic, data)
        return self.handle_call_response(result, node)

    async def call_find_records(self, node: Node, target: Node, cursor: "int | bytes" = 0,
                                limit: int | None = None):
        ok, value = await self._ask((node.ip, node.port), "find_records", self.source_node.id,
                                    target.id, cursor, tail=() if limit is None else (limit,))
        if ok:
            if page_shape_ok(value):
                value = dict(value, nodes=self.sanitize_nodes(value["nodes"], self.router.ksize))
            else:
                self.stats[refusal("bad_reply")] += 1
                ok, value = False, None
        return self.handle_call_response((ok, value), node)

    async def call_ping(self, node_to_ask):
        result = await self.ping((node_to_ask.ip, node_to_ask.port), self.source_node.id)
        return self.handle_call_response(result, node_to_ask)

    async def call_store(self, node_to_ask, key, value):
        return (False, None)  # kademlia's unvalidated single-value store is never used

    def announce_leave(self, limit: int) -> int:
        """Tell up to ``limit`` closest contacts we are stopping (those whose cookie we hold:
        a leave without one is ignored). Fire and forget; returns how many were told."""
        told = 0
        for node in self.neighbors(self.source_node, k=limit):
            cookie = self._cookies.get((node.ip, node.port))
            if cookie is not None:
                self._call((node.ip, node.port), "leave", self.source_node.id, cookie)
                told += 1
        return told

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
        pushed, batch = 0, []
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
                    batch.append((topic, data))
                    pushed += 1
        self.router.add_contact(node)
        if batch:
            asyncio.ensure_future(self._push(node, batch))

    async def _push(self, node: Node, batch: list[tuple[bytes, bytes]]) -> None:
        """Replicate to a newcomer a few stores at a time (within the per-peer bound)."""
        step = max(1, self.config.max_outstanding_per_peer // 4)
        for i in range(0, len(batch), step):
            await asyncio.gather(*(self.call_store_record(node, t, d) for t, d in batch[i:i + step]))


def cursor_ok(cursor: object) -> bool:
    if isinstance(cursor, bool):
        return False
    if isinstance(cursor, int):
        return 0 <= cursor < 2**32
    return isinstance(cursor, bytes) and len(cursor) <= MAX_SLOT_CURSOR


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

