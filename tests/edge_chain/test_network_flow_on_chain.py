"""The main job on a real regtest chain: three Electrum 4.8 daemons, driven only through plugin
commands, discover each other in the DHT, build a MuSig2 output, fund it with an ordinary send,
co-sign a two-input spend over peer sessions (request -> approvals -> round 1 -> round 2),
broadcast through the wallet and see it confirmed in a block (checked through the node's RPC).
"""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.harness.electrum import build_plugin_zip
from tests.harness.wallets import ElectrumRPCError, wait_for_height, wait_for_tx

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return build_plugin_zip(tmp_path_factory.mktemp("zip"))


def _wait(pred, timeout=90, what="condition", every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.mark.parametrize("n_inputs", [1, 2])
def test_discover_fund_cosign_broadcast_confirm(regtest_chain, electrum_wallets, plugin_zip, n_inputs):
    chain = regtest_chain
    t0 = time.monotonic()
    timings = {}
    alice, bob, carol = electrum_wallets(3, names=["alice", "bob", "carol"], plugin_zip=plugin_zip)
    ws = [alice, bob, carol]

    # refusals before the node runs: clear, typed
    with pytest.raises(ElectrumRPCError, match="not running"):
        alice.cmd(P + "find_signers")

    a = alice.cmd(P + "node_start")
    seed = f"127.0.0.1:{a['dht'][1]}"
    nodes = [a] + [w.cmd(P + "node_start", bootstrap=seed) for w in (bob, carol)]
    assert all(n["running"] for n in nodes)
    for w, nick in ((bob, "bob"), (carol, "carol")):
        ad = w.cmd(P + "advertise", nickname=nick, tx_types="spend", max_amount=10**8, fee=100)
        assert ad["nickname"] == nick and ad["endpoint"].startswith("127.0.0.1:")
    found = _wait(lambda: (lambda got: got if len(got) >= 2 else None)(
        alice.cmd(P + "find_signers", amount=50_000_000)), what="two advertised signers")
    by_nick = {s["nickname"]: s for s in found}
    assert set(by_nick) >= {"bob", "carol"}
    assert by_nick["bob"]["pubkey"] == bob.cmd(P + "participant_key")["pubkey"]
    assert by_nick["bob"]["observed"] == [0, 0, 0]
    timings["discover"] = time.monotonic() - t0

    made = alice.cmd(P + "create_output", keys=f'{by_nick["bob"]["pubkey"]},{by_nick["carol"]["pubkey"]}')
    address = made["address"]
    for w in (bob, carol):
        assert w.cmd(P + "create_output", descriptor=made["descriptor"])["address"] == address

    t1 = time.monotonic()
    chain.fund(alice.new_address(), "1.0")
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    _wait(lambda: alice.balance()["confirmed"] == Decimal("1.0"), what="alice funded")
    amounts = ("0.25", "0.15")[:n_inputs]
    for amount in amounts:                   # one coin per input, by ordinary Electrum sends
        raw = alice.cli("payto", address, amount, "--feerate", "2")
        wait_for_tx([alice], alice.call("broadcast", tx=raw))   # next send spends its change
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    total = sum(int(Decimal(a) * 10**8) for a in amounts)
    _wait(lambda: [o for o in alice.cmd(P + "list_outputs")
                   if o["balance"]["confirmed"] == total and len(o["coins"]) == n_inputs],
          what="coins confirmed")
    timings["fund"] = time.monotonic() - t1

    t2 = time.monotonic()
    dest = carol.new_address()
    pay = total - 1_000_000
    req = alice.cmd(P + "request_spend", outputs=f'[["{dest}", {pay}]]', feerate=2)
    rid = req["request_id"]
    assert rid and sorted(req["sighashes"]) == [str(i) for i in range(n_inputs)]
    for w in (bob, carol):
        pending = _wait(lambda: [r for r in w.cmd(P + "list_requests") if r["request_id"] == rid],
                        what="request delivered")[0]
        assert pending["status"] == "pending", pending
        assert [o["value_sats"] for o in pending["review"]["outputs"] if o["address"] == dest] == [pay]
        assert pending["review"]["fee_sats"] == req["review"]["fee_sats"]
    # a stranger's approval of an unknown id is refused clearly
    with pytest.raises(ElectrumRPCError, match="unknown signing request"):
        bob.cmd(P + "approve", request_id="00" * 32)
    for w in (bob, carol):
        assert w.cmd(P + "approve", request_id=rid)["status"] in ("approved", "signed")
    signed = _wait(lambda: (lambda s: s if s["status"] in ("signed", "broadcast") else
                            (pytest.fail(s["error"]) if s["status"] == "failed" else None))(
        alice.cmd(P + "session_status", request_id=rid)), what="signed", every=0.05)
    # Asking for the broadcast while the wallet's own one is (most likely) still in flight:
    # the same txid, and the transaction went to the server once, not twice.
    assert alice.cmd(P + "broadcast_request", request_id=rid)["txid"] == req["txid"]
    done = alice.cmd(P + "session_status", request_id=rid)
    assert done["status"] == "broadcast" and done["broadcasts"] == 1, (signed["status"], done)
    assert alice.cmd(P + "broadcast_request", request_id=rid)["txid"] == req["txid"]
    assert alice.cmd(P + "session_status", request_id=rid)["broadcasts"] == 1
    timings["cosign+broadcast"] = time.monotonic() - t2
    txid = done["broadcast_txid"]
    assert txid == req["txid"] and chain.node.in_mempool(txid)
    exported = bob.cmd(P + "export_psbt", request_id=rid)
    assert exported["txid"] == txid and exported["psbt"].startswith("cHNidP8")

    t3 = time.monotonic()
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    assert chain.getrawtransaction(txid)["confirmations"] >= 1
    assert len(chain.getrawtransaction(txid)["vin"]) == n_inputs
    after = {s["nickname"]: s for s in alice.cmd(P + "find_signers")}
    assert after["bob"]["observed"] == [1, 0, 0] and after["carol"]["observed"] == [1, 0, 0]
    _wait(lambda: carol.balance()["confirmed"] == Decimal(pay) / 10**8, what="carol sees the payment")
    timings["confirm"] = time.monotonic() - t3
    print("phase timings (s):", {k: round(v, 2) for k, v in timings.items()},
          "session phases:", done["phases"])
