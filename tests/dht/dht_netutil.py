"""Helpers that build real kademlia networks on 127.0.0.1 for the DHT tests."""
from __future__ import annotations

import asyncio
import contextlib
import random

from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.dht import DhtConfig, DhtNode
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.records import Advertisement, shard_of

# Every node of a test network shares 127.0.0.1, so rate budgets are kept per
# (IP, port) here ("address"); production keys them per IP ("host"), which
# tests/dht/test_store.py exercises on the limiter itself.
FAST = DhtConfig(rpc_timeout=1.0, rate_limit_by="address", prune_interval=0.2)


@contextlib.asynccontextmanager
async def network(n: int, config: DhtConfig = FAST, seed: int = 1):
    """``n`` nodes: each joins through one or two random earlier nodes."""
    rng = random.Random(seed)
    nodes: list[DhtNode] = []
    try:
        for i in range(n):
            node = DhtNode(config, chain=REGTEST)
            boot = [] if not nodes else [nodes[0].address] + ([rng.choice(nodes).address] if i > 2 else [])
            await node.start(bootstrap=boot)
            nodes.append(node)
        # a second join walk fills the early nodes' tables with the later ones
        await asyncio.gather(*(node.bootstrap([nodes[-1].address]) for node in nodes[:5]))
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


_IN_SHARD: dict[int, list[bytes]] = {}
_NEXT_CANDIDATE = [0xA11CE000]


def seckey(i: int, shard: int | None = 0) -> bytes:
    """The i-th test key whose signer shard is ``shard`` (deterministic), so tests can put
    many signers in one shard topic; ``shard=None``: keys spread over all shards."""
    if shard is None:
        return (0xB0B00000 + i).to_bytes(32, "big")
    keys = _IN_SHARD.setdefault(shard, [])
    while len(keys) <= i:
        k = _NEXT_CANDIDATE[0].to_bytes(32, "big")
        _NEXT_CANDIDATE[0] += 1
        _IN_SHARD.setdefault(shard_of(plain_pubkey(k)), []).append(k)
    return keys[i]


def make_ad(i: int, *, tx_types=("spend",), lo=10_000, hi=10_000_000, reputation=50, fee=100,
            ttl=60.0, seq=None, nickname=None, key=None, chain=REGTEST) -> Advertisement:
    return Advertisement.create(key or seckey(i), tx_types=tx_types, min_amount_sat=lo,
                                max_amount_sat=hi, host="127.0.0.1", port=40_000 + i,
                                nickname=nickname or f"signer{i}", reputation=reputation,
                                fee_per_signature_sat=fee, response_time_s=10 + i, ttl=ttl, seq=seq,
                                chain=chain)


async def wait_until(predicate, timeout: float = 5.0, step: float = 0.05) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(step)
    return False
