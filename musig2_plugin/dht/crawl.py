"""Iterative lookup that gathers records from every node it walks past.

Like kademlia's ``NodeSpiderCrawl`` it converges on the k nodes closest to the
topic (alpha queries in flight per round), but each step is a
``find_records`` call, whose first page carries records *and* closer nodes.
So one walk both finds the k closest nodes and collects their record sets;
peers with more records than fit a datagram are paged until done or until
``max_pages``. Replies of the wrong shape count as no reply.
"""
from __future__ import annotations

import asyncio

from kademlia.crawling import SpiderCrawl
from kademlia.node import Node

from .protocol import RecordProtocol, page_shape_ok, parse_nodes


class RecordCrawl(SpiderCrawl):
    def __init__(self, protocol: RecordProtocol, node: Node, peers: list[Node], ksize: int,
                 alpha: int, max_pages: int) -> None:
        super().__init__(protocol, node, peers, ksize, alpha)
        self.max_pages = max_pages
        self.found: list[bytes] = []
        self.by_peer: dict[bytes, tuple[Node, list[bytes]]] = {}
        self.responders = 0

    async def find(self) -> list[bytes]:
        return await self._find(self.protocol.call_find_records)

    async def _nodes_found(self, responses):
        toremove, follow = [], []
        for peerid, (ok, value) in responses.items():
            if not ok or not page_shape_ok(value):
                toremove.append(peerid)
                continue
            self.responders += 1
            peer = self.nearest.get_node(peerid)
            self.nearest.push(parse_nodes(value["nodes"]))
            self.found.extend(value["records"])
            if peer is not None:
                self.by_peer[peerid] = (peer, list(value["records"]))
                if value["next"] is not None:
                    follow.append(self._more_pages(peer, value["next"]))
        self.nearest.remove(toremove)
        if follow:
            await asyncio.gather(*follow)
        if self.nearest.have_contacted_all():
            return self.found
        return await self.find()

    async def _more_pages(self, peer: Node, cursor: int) -> None:
        for _ in range(self.max_pages - 1):
            ok, value = await self.protocol.call_find_records(peer, self.node, cursor)
            if not ok or not page_shape_ok(value) or value["next"] is not None and value["next"] <= cursor:
                return
            self.found.extend(value["records"])
            self.by_peer[peer.id][1].extend(value["records"])
            if value["next"] is None:
                return
            cursor = value["next"]
