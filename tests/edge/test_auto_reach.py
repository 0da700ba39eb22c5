"""Node start's background reachability step, in one process: real coordinator nodes and
aiorpcx sessions on 127.0.0.1 (DHT off), real Electrum wallets.

Start returns before the step (dial-back, else a relay) has run; an advertise issued meanwhile
waits for it and then publishes what the step found; a step that does not settle in time makes
the advertise fail with ReachNotSettled and publish nothing; stop ends a running step."""
from __future__ import annotations

import asyncio

import pytest

from musig2_plugin.app import ReachNotSettled, advertise
from musig2_plugin.app.cosign import WalletCosigner
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.foundation.config import DEFAULT_CONFIG
from musig2_plugin.foundation.endpoint import Endpoint, Reach
from musig2_plugin.wallet_bridge import participant_secret


@pytest.fixture(scope="module")
def duo(module_wallets):
    ws = [module_wallets.new(password="pw")[0] for _ in range(2)]     # regtest nodes below:
    # loopback may be published there, so a dial-back on 127.0.0.1 makes a node "direct"
    return [(w, participant_secret(w, "pw")) for w in ws]


async def test_advertise_waits_for_the_background_reach_step(duo):
    (wa, sa), (wb, sb) = duo
    peer, node = WalletCosigner(wa, sa, chain=REGTEST), WalletCosigner(wb, sb, chain=REGTEST)
    peer_ep = await peer.start(dht=False)
    try:
        await node.start(dht=False, bootstrap=[tuple(peer_ep)], reach=True)
        # start returned at once: the step has not run yet, nothing verified
        st = node.status()
        assert st["reach_pending"] is True and st["reach"]["verified"] is False
        ad = await advertise(node, tx_types=["spend"], nickname="bob")
        st = node.status()
        assert st["reach_pending"] is False and st["reach_error"] is None
        # peer dialled us back on 127.0.0.1 (regtest may publish loopback): direct, verified
        assert st["reach"]["verified"] is True and st["reach"]["path"] == "direct"
        assert st["reach"]["public_ip"] == "127.0.0.1"
        assert ad.endpoint.port == node.node.endpoint.port
    finally:
        await node.stop()
        await peer.stop()


async def test_a_reach_step_that_does_not_settle_fails_the_advertise_typed(duo):
    (wa, sa), _ = duo
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader, writer):      # accepts, never answers: the dial-back hangs
        accepted.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    silent_ep = server.sockets[0].getsockname()[:2]
    node = WalletCosigner(wa, sa, chain=REGTEST)
    try:
        await node.start(dht=False, bootstrap=[silent_ep], reach=True)
        with pytest.raises(ReachNotSettled, match="still finding out how peers reach"):
            await node.reach_settled(timeout=0.5)
        assert accepted, "the step never asked the silent peer"
        assert node.reach_pending and node.node.advertisement is None   # nothing published
        task = node._reach_task
    finally:
        await asyncio.wait_for(node.stop(), 10)   # stop ends the running step
        server.close()
        for w in accepted:
            w.close()
    assert task.cancelled() and not node.reach_pending


async def test_without_reach_start_runs_no_step(duo):
    (wa, sa), _ = duo
    node = WalletCosigner(wa, sa, chain=REGTEST)
    await node.start(dht=False)
    try:
        st = node.status()
        assert st["reach_pending"] is False and st["reach"]["public_ip"] is None
        await node.reach_settled(timeout=0.01)          # nothing to wait for
        assert node.node.reachability is None
    finally:
        await node.stop()


def _relay_endpoint(c: WalletCosigner) -> Endpoint:
    ep = c.node.endpoint
    return Endpoint(ep.host, ep.port, Reach.RELAY, c.pubkey)


async def test_a_node_nobody_can_dial_back_advertises_through_a_relay(duo, module_wallets):
    """The node listens on 127.0.0.2 but reaches its peer from 127.0.0.1: the peer's dial-back
    (to the address it sees) finds nobody, so the background step reserves at the peer's relay."""
    (wa, sa), (wb, sb) = duo
    relay, node = WalletCosigner(wa, sa, chain=REGTEST), WalletCosigner(wb, sb, chain=REGTEST)
    relay_ep = await relay.start(dht=False)
    relay.node.enable_relay()
    try:
        await node.start("127.0.0.2", 0, dht=False, bootstrap=[tuple(relay_ep)], reach=True)
        assert node.reach_pending
        ad = await advertise(node, tx_types=["spend"], nickname="bob")
        st = node.status()
        assert st["reach_error"] is None and st["reach"]["path"] == "relay"
        assert st["reach"]["verified"] is False and st["reach"]["public_ip"] == "127.0.0.1"
        assert st["reach"]["relays"] == [_relay_endpoint(relay).to_json()]
        assert ad.endpoint == _relay_endpoint(relay)
    finally:
        await node.stop()
        await relay.stop()


async def test_a_failed_reach_step_is_reported(duo, module_wallets):
    """The only relay is full (one reservation, taken): the step fails, the node keeps running,
    the status names the failure, and the advertise publishes the listen endpoint regtest
    allows (never a relay that refused us)."""
    (wa, sa), (wb, sb) = duo
    filler_w = module_wallets.new(password="pw")[0]
    relay = WalletCosigner(wa, sa, chain=REGTEST,
                           config=DEFAULT_CONFIG.with_(relay_max_reservations=1))
    filler = WalletCosigner(filler_w, participant_secret(filler_w, "pw"), chain=REGTEST)
    node = WalletCosigner(wb, sb, chain=REGTEST)
    relay_ep = await relay.start(dht=False)
    relay.node.enable_relay()
    await filler.start("127.0.0.2", 0, dht=False)
    try:
        await filler.node.use_relays([_relay_endpoint(relay)])
        await node.start("127.0.0.2", 0, dht=False, bootstrap=[tuple(relay_ep)], reach=True)
        await node.reach_settled()
        st = node.status()
        assert st["running"] and not st["reach_pending"]
        assert st["reach_error"] == ("CoordinatorError: no relay among the candidates accepted "
                                 "a reservation")
        assert st["reach"]["relays"] == [] and st["reach"]["path"] == "direct"
        ad = await advertise(node, tx_types=["spend"])
        assert ad.endpoint == node.node.endpoint and ad.endpoint.kind is Reach.DIRECT
    finally:
        await node.stop()
        await filler.stop()
        await relay.stop()
