"""Advertisements naming somebody else's endpoint (to aim traffic at a victim) cost each
discovering node bounded attempts: one failed handshake, then the endpoint is ignored; and
connection attempts per endpoint are rate limited. Real nodes (kademlia + aiorpcx on
127.0.0.1); the victims are a plain TCP service counting its connections, an honest node,
and a port where nothing listens."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from musig2_plugin.coordinator import Musig2Node
from musig2_plugin.dht import DhtConfig, DhtNode
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.foundation.config import Musig2Config
from musig2_plugin.records import Advertisement
from musig2_plugin.transport import PeerIgnored, PeerUnreachable

CFG = Musig2Config().with_(round_timeout=2.0, coordinator_grace=1.0, heartbeat_interval=0.5,
                           connect_timeout=2.0, request_timeout=3.0)
DHT = DhtConfig(rate_limit_by="address", rpc_timeout=1.0)
FAKES = 12


class PlainVictim:
    """Somebody's unrelated TCP service: answers anything with an HTTP error and hangs up."""

    def __init__(self) -> None:
        self.connections = 0
        self.bytes_in = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> tuple[str, int]:
        async def handle(reader, writer):
            self.connections += 1
            try:
                data = await asyncio.wait_for(reader.readline(), 5)
                self.bytes_in += len(data)
                writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                await writer.drain()
            finally:
                writer.close()
        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def dead_endpoint() -> tuple[str, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[:2]                  # closed again: nothing listens there


async def publish_fakes(dht: DhtNode, endpoint: tuple[str, int], n: int) -> set[bytes]:
    """Attacker: ``n`` correctly signed advertisements of fresh keys, all naming ``endpoint``."""
    owners = set()
    for i in range(n):
        ad = Advertisement.create(os.urandom(32), chain=REGTEST, tx_types="spend",
                                  min_amount_sat=0, max_amount_sat=10**8, host=endpoint[0],
                                  port=endpoint[1], nickname=f"fake{i}", reputation=100)
        await dht.publish(ad)
        owners.add(ad.owner)
    return owners


async def push_to_all(me: Musig2Node, owners: set[bytes]) -> None:
    for owner in owners:
        await me.announce_signing_request([me.pubkey, owner], [os.urandom(32)])


@pytest.fixture
async def world():
    honest = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    me = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG, dht_config=DHT)
    attacker = DhtNode(DHT, chain=REGTEST)
    plain = PlainVictim()
    await honest.start(dht=True)
    await me.start(dht=True, bootstrap=[honest.dht_address])
    await attacker.start(bootstrap=[honest.dht_address])
    await honest.advertise_signer(nickname="honest")
    yield honest, me, attacker, plain
    await asyncio.gather(honest.stop(), me.stop(), attacker.stop())
    if plain.server is not None:
        await plain.stop()


async def test_fake_signers_at_a_foreign_service_cost_it_one_connection(world):
    honest, me, attacker, plain = world
    fakes = await publish_fakes(attacker, await plain.start(), FAKES)
    found = {a.owner for a in await me.find_available_signers()}
    assert fakes <= found and honest.pubkey in found
    await push_to_all(me, fakes)                                # every fake: one push attempt
    await push_to_all(me, fakes)                                # and again
    assert plain.connections == 1                               # one failed handshake in all
    guard = me.transport.pool.guard
    assert guard.stats["handshake_failed"] == 1
    assert guard.stats["ignored"] == 2 * FAKES - 1              # the rest: ignored, no traffic
    with pytest.raises(PeerIgnored, match="failed the handshake"):
        await me.transport.push_request(("127.0.0.1", plain.server.sockets[0].getsockname()[1]),
                                        b"\x00", to=next(iter(fakes)))


async def test_fake_signers_at_an_honest_node_cost_one_handshake_each_and_lock_nobody_out(world):
    honest, me, attacker, plain = world
    fakes = await publish_fakes(attacker, honest.endpoint, FAKES)
    found = {a.owner for a in await me.find_available_signers()}
    assert fakes <= found
    await push_to_all(me, fakes)
    assert honest.transport.hellos_answered == FAKES                      # one per fake advertisement
    assert me.transport.pool.guard.stats["handshake_failed"] == FAKES
    await push_to_all(me, fakes)
    assert honest.transport.hellos_answered == FAKES                      # then ignored: nothing more
    assert honest.transport.refusals == {} and honest.requests == {}   # never bothered past hello
    # the honest node's own key stays reachable at its endpoint
    record = await me.announce_signing_request([me.pubkey, honest.pubkey], [os.urandom(32)])
    assert list(honest.requests) and honest.requests[next(iter(honest.requests))].record == record
    ids = await asyncio.gather(me.join_signing_request(record), honest.join_signing_request(record))
    sigs = await asyncio.gather(me.get_final_signature(ids[0][0], 20),
                                honest.get_final_signature(ids[1][0], 20))
    assert sigs[0] == sigs[1]


async def test_connection_attempts_to_a_silent_endpoint_are_rate_limited(world):
    honest, me, attacker, plain = world
    fakes = await publish_fakes(attacker, dead_endpoint(), FAKES)
    await me.find_available_signers()
    await push_to_all(me, fakes)
    guard = me.transport.pool.guard
    assert guard.stats["connect_failed"] == CFG.endpoint_attempt_burst
    assert guard.stats["rate_limited"] == FAKES - CFG.endpoint_attempt_burst
    # the budget refills slowly (endpoint_attempts_per_minute): a second round adds at most
    # what the elapsed time allows
    await push_to_all(me, fakes)
    assert guard.stats["connect_failed"] <= CFG.endpoint_attempt_burst + 1


async def test_raw_hello_abuse_is_refused_and_bounded():
    """A junk nonce is a refusal charged to the connection, not a crash."""
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
    client = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG)
    await node.start(dht=False)
    await client.start(dht=False)
    try:
        from musig2_plugin.foundation import constants as C
        from musig2_plugin.transport import PeerRefused
        for bad in (["zz" * 32], ["00" * 31], [5]):
            with pytest.raises(PeerRefused, match="bad hello nonce"):
                await client.transport.pool.request(node.endpoint, C.RPC_HELLO, bad)
        assert node.transport.hellos_answered == 0
    finally:
        await asyncio.gather(node.stop(), client.stop())


async def test_a_hello_flood_is_answered_at_a_bounded_rate():
    """Each hello costs the listener a signature: past the node-wide budget it answers 'busy'
    (a transient refusal the dialer retries later), and keeps serving everything else."""
    from musig2_plugin.foundation import constants as C
    from musig2_plugin.transport import PeerRefused
    from musig2_plugin.transport.hello import new_nonce
    cfg = CFG.with_(hello_rate_per_sec=1.0, hello_burst=5, peer_rate_per_sec=1000.0,
                    peer_burst=1000)
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=cfg)
    flooder = Musig2Node(os.urandom(32), chain=REGTEST, config=cfg)
    await node.start(dht=False)
    await flooder.start(dht=False)
    try:
        busy = 0
        for _ in range(30):
            try:
                await flooder.transport.pool.request(node.endpoint, C.RPC_HELLO,
                                                     [new_nonce().hex()])
            except PeerRefused as exc:
                assert "handshake rate exceeded" in str(exc)
                busy += 1
        assert node.transport.hellos_answered <= 6 and busy >= 24
        # a busy answer is not held against the endpoint: the dialer will try again later
        honest = Musig2Node(os.urandom(32), chain=REGTEST, config=cfg)
        await honest.start(dht=False)
        try:
            with pytest.raises(PeerUnreachable, match="busy"):
                await honest.transport.push_request(node.endpoint, b"x", to=node.pubkey)
            assert honest.transport.pool.guard.stats["handshake_failed"] == 0
        finally:
            await honest.stop()
    finally:
        await asyncio.gather(node.stop(), flooder.stop())


async def test_a_tarpit_is_dialed_at_a_bounded_rate_but_not_shunned():
    """A listener that accepts and never answers (or a co-signer frozen under load): each
    unanswered hello spends the endpoint's attempt budget; it is not remembered as hostile."""
    held = []

    async def tarpit(reader, writer):
        held.append(writer)                       # accept, read nothing, answer nothing

    server = await asyncio.start_server(tarpit, "127.0.0.1", 0)
    endpoint = server.sockets[0].getsockname()[:2]
    cfg = CFG.with_(request_timeout=0.3, endpoint_attempt_burst=3)
    me = Musig2Node(os.urandom(32), chain=REGTEST, config=cfg)
    await me.start(dht=False)
    try:
        fakes = [os.urandom(33) for _ in range(8)]
        outcomes = []
        for key in fakes:
            try:
                await me.transport.push_request(endpoint, b"x", to=b"\x02" + key[1:])
            except PeerIgnored as exc:
                outcomes.append("ignored:" + str(exc)[:20])
            except PeerUnreachable as exc:
                outcomes.append("silent" if "no hello answer" in str(exc) else str(exc))
        assert outcomes.count("silent") == 3 and len(held) == 3     # the burst, then no traffic
        guard = me.transport.pool.guard
        assert guard.stats["rate_limited"] == 5 and guard.stats["handshake_failed"] == 0
        assert guard.ignored_count() == 0                           # nothing held against it
    finally:
        await me.stop()
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
