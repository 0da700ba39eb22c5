"""Three real Electrum 4.8 daemons (separate processes, throwaway directories) with the plugin zip,
driven only through plugin commands, co-sign spends of a MuSig2 output on a real regtest chain.

The PSBT path: participant keys -> the MuSig2 output (same address in all three wallets) -> an
ordinary Electrum send and a node payment fund it -> a spend request (PSBT with BIP-373 fields) ->
round 1 (nonces) and round 2 (partial signatures) in each wallet -> finalize -> the node's verdict
-> broadcast through the wallet -> confirmed in a block (node RPC). A tampered signature is refused
by the node and by the wallet's broadcast; a request whose message differs is refused by a co-signer.
"""
from __future__ import annotations

import json
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


def _wait(pred, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _output_with_balance(w, address, sats):
    def check():
        for o in w.cmd(P + "list_outputs"):
            if o["address"] == address and o["balance"]["confirmed"] == sats:
                return o
        return None
    return _wait(check, what=f"{sats} sat confirmed on {address}")


def test_three_daemons_cosign_two_input_spend_on_chain(regtest_chain, electrum_wallets, plugin_zip):
    chain = regtest_chain
    alice, bob, carol = electrum_wallets(3, names=["alice", "bob", "carol"], plugin_zip=plugin_zip)
    ws = [alice, bob, carol]
    keys = [w.cmd(P + "participant_key")["pubkey"] for w in ws]
    assert len(set(keys)) == 3

    made = alice.cmd(P + "create_output", keys=",".join(keys[1:]), label="team")
    address, descriptor = made["address"], made["descriptor"]
    assert address.startswith("bcrt1p") and descriptor.startswith("tr(musig(")
    for w in (bob, carol):      # the others import the same descriptor and see the same address
        assert w.cmd(P + "create_output", descriptor=descriptor)["address"] == address

    # fund: one coin from the node, one by an ordinary Electrum send from alice's wallet
    chain.fund(alice.new_address(), "1.0")
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    _wait(lambda: alice.balance()["confirmed"] == Decimal("1.0"), what="alice funded")
    chain.fund(address, "0.3")
    raw = alice.cli("payto", address, "0.2", "--feerate", "2")
    alice.call("broadcast", tx=raw)
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    out = _output_with_balance(alice, address, 50_000_000)
    assert len(out["coins"]) == 2

    dest = alice.new_address()
    req = alice.cmd(P + "request_spend", outputs=f'[["{dest}", 49000000]]', feerate=2)
    psbt, sighashes = req["psbt"], req["sighashes"]
    assert sorted(sighashes) == ["0", "1"]
    assert req["review"]["fee_sats"] > 0

    # a co-signer refuses a request whose message differs from the transaction's sighash
    bad = dict(sighashes)
    bad["1"] = ("00" if bad["1"][:2] != "00" else "01") + bad["1"][2:]
    with pytest.raises(ElectrumRPCError, match="SighashMismatch"):
        bob.cmd(P + "psbt_nonce", psbt=psbt, sighashes=json.dumps(bad))

    for w in ws:                                   # round 1
        psbt = w.cmd(P + "psbt_nonce", psbt=psbt, sighashes=json.dumps(sighashes))["psbt"]
    for w in ws:                                   # round 2
        got = w.cmd(P + "psbt_sign", psbt=psbt)
        assert got["signed_inputs"] == [0, 1]
        psbt = got["psbt"]
    final = carol.cmd(P + "psbt_finalize", psbt=psbt)
    tx_hex, txid = final["tx"], final["txid"]
    assert txid == req["txid"]

    verdict = chain.testmempoolaccept(tx_hex)[0]
    assert verdict["allowed"] is True, verdict

    # a tampered signature: the node refuses it, and so does the wallet's broadcast
    decoded = chain.node.call("decoderawtransaction", tx_hex)
    sig = decoded["vin"][0]["txinwitness"][0]
    flipped = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
    tampered = tx_hex.replace(sig, flipped)
    assert tampered != tx_hex
    bad_verdict = chain.testmempoolaccept(tampered)[0]
    assert bad_verdict["allowed"] is False and "signature" in bad_verdict["reject-reason"].lower()
    with pytest.raises(ElectrumRPCError, match="BroadcastError"):
        alice.cmd(P + "broadcast", tx=tampered)

    assert alice.cmd(P + "broadcast", tx=tx_hex)["txid"] == txid
    assert chain.node.in_mempool(txid)
    chain.mine(1)
    wait_for_height(ws, chain.node.height())
    onchain = chain.getrawtransaction(txid)
    assert onchain["confirmations"] >= 1
    spent = {(c["outpoint"].split(":")[0], int(c["outpoint"].split(":")[1])) for c in out["coins"]}
    assert {(v["txid"], v["vout"]) for v in onchain["vin"]} == spent
    wait_for_tx([alice], txid, confirmations=1)
    _output_with_balance(bob, address, 0)
