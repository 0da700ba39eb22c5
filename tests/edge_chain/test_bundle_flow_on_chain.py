"""The whole wallet flow with wallets running in the bundle-like environment (.venv-bundle):
Electrum's own dependencies only, so the plugin runs on electrum_ecc's libsecp256k1 (ctypes
backend) and on the kademlia/rpcudp/umsgpack carried inside its zip.

alice (the requester) and bob run there; carol runs in the development environment
(coincurve backend), so the session also proves that both backends interoperate. Steps:
advertise, discover, MuSig2 output, fund by an ordinary send, request, approve, both signing
rounds, broadcast, confirmed in a block (checked through bitcoind's RPC).
"""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.harness.bundle import BUNDLE_VENV, require_bundle_env
from tests.harness.electrum import build_plugin_zip
from tests.harness.wallets import wait_for_height, wait_for_tx

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"


def _wait(pred, timeout=90, what="condition", every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def test_wallet_flow_with_wallets_in_the_bundle_env(regtest_chain, electrum_wallets, tmp_path):
    require_bundle_env()
    chain = regtest_chain
    plugin_zip = build_plugin_zip(tmp_path)
    alice, bob, carol = electrum_wallets(3, names=["alice", "bob", "carol"], plugin_zip=plugin_zip,
                                         venvs=[BUNDLE_VENV, BUNDLE_VENV, None])
    ws = [alice, bob, carol]
    backends = [w.cmd(P + "status")["crypto_backend"] for w in ws]
    assert backends == ["electrum_ecc", "electrum_ecc", "coincurve"]

    # advertise + discover (DHT on the zip's kademlia in alice's and bob's Electrum)
    a = alice.cmd(P + "node_start")
    seed = f"127.0.0.1:{a['dht'][1]}"
    assert all(w.cmd(P + "node_start", bootstrap=seed)["running"] for w in (bob, carol))
    for w, nick in ((bob, "bob"), (carol, "carol")):
        w.cmd(P + "advertise", nickname=nick, tx_types="spend", max_amount=10**8, fee=100)
    found = _wait(lambda: (lambda got: got if len(got) >= 2 else None)(
        alice.cmd(P + "find_signers", amount=50_000_000)), what="two advertised signers")
    by_nick = {s["nickname"]: s for s in found}
    assert by_nick["bob"]["pubkey"] == bob.cmd(P + "participant_key")["pubkey"]
    assert by_nick["carol"]["pubkey"] == carol.cmd(P + "participant_key")["pubkey"]

    # the MuSig2 output (3-of-3), known to all three
    made = alice.cmd(P + "create_output", keys=f'{by_nick["bob"]["pubkey"]},{by_nick["carol"]["pubkey"]}')
    address = made["address"]
    for w in (bob, carol):
        assert w.cmd(P + "create_output", descriptor=made["descriptor"])["address"] == address

    # fund it by an ordinary Electrum send
    chain.fund(alice.new_address(), "1.0")
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    _wait(lambda: alice.balance()["confirmed"] == Decimal("1.0"), what="alice funded")
    raw = alice.cli("payto", address, "0.3", "--feerate", "2")
    wait_for_tx([alice], alice.call("broadcast", tx=raw))
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    total = 30_000_000
    _wait(lambda: [o for o in alice.cmd(P + "list_outputs") if o["balance"]["confirmed"] == total],
          what="coin confirmed")

    # request -> approvals -> round 1 -> round 2 -> broadcast
    dest = carol.new_address()
    pay = total - 1_000_000
    req = alice.cmd(P + "request_spend", outputs=f'[["{dest}", {pay}]]', feerate=2)
    rid = req["request_id"]
    for w in (bob, carol):
        pending = _wait(lambda: [r for r in w.cmd(P + "list_requests") if r["request_id"] == rid],
                        what="request delivered")[0]
        assert pending["status"] == "pending", pending
        assert [o["value_sats"] for o in pending["review"]["outputs"] if o["address"] == dest] == [pay]
        assert w.cmd(P + "approve", request_id=rid)["status"] in ("approved", "signed")
    _wait(lambda: (lambda s: s if s["status"] in ("signed", "broadcast") else
                   (pytest.fail(s["error"]) if s["status"] == "failed" else None))(
        alice.cmd(P + "session_status", request_id=rid)), what="signed", every=0.1)
    assert alice.cmd(P + "broadcast_request", request_id=rid)["txid"] == req["txid"]
    done = alice.cmd(P + "session_status", request_id=rid)
    assert done["status"] == "broadcast"
    txid = done["broadcast_txid"]
    assert txid == req["txid"] and chain.node.in_mempool(txid)

    # confirmed on the regtest chain; carol sees the payment
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    assert chain.getrawtransaction(txid)["confirmations"] >= 1
    _wait(lambda: carol.balance()["confirmed"] == Decimal(pay) / 10**8, what="carol sees the payment")
    for w in (alice, bob):
        log = w.daemon.log_path.read_text(errors="replace")
        assert "Traceback" not in log
        # Really Electrum of .venv-bundle. Last: version_info makes Electrum probe its optional
        # QR-code library (absent here), which logs a traceback of Electrum's own.
        assert ".venv-bundle" in w.call("version_info")["python.path"]
