"""Electrum pays Electrum on a real regtest chain; consensus refuses a forged signature.

Real parts only: Bitcoin Knots (or $BITCOIND) in regtest, ElectrumX 1.20 in front of it, Electrum
4.8 daemons connected to that server alone, Electrum's own ``payto`` and ``broadcast``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.harness.chain import RegtestChain, RPCError
from tests.harness.electrum import ElectrumCommandError
from tests.harness.wallets import ChainWallet, ElectrumRPCError, wait_for_balance, wait_for_height, wait_for_tx

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]

FEERATE = "2"  # sat/vbyte; regtest has no fee estimates, so the rate is explicit


def _fund_confirmed(chain: RegtestChain, wallet: ChainWallet, amount: str) -> str:
    txid = chain.fund(wallet.new_address(), amount)
    chain.mine(1)
    wait_for_tx([wallet], txid, confirmations=1)
    return txid


def _fee_from_node(chain: RegtestChain, txid: str) -> Decimal:
    """The fee as the node computes it: inputs' values (from their funding txs) minus outputs."""
    tx = chain.getrawtransaction(txid)
    spent = sum(
        Decimal(chain.getrawtransaction(vin["txid"])["vout"][vin["vout"]]["value"]) for vin in tx["vin"]
    )
    return spent - sum(Decimal(vout["value"]) for vout in tx["vout"])


def test_electrum_pays_electrum_and_node_confirms(regtest_chain: RegtestChain, electrum_wallets) -> None:
    alice, bob = electrum_wallets(2, names=["alice", "bob"])
    _fund_confirmed(regtest_chain, alice, "1.0")
    assert wait_for_balance(alice, Decimal("1.0"))["unconfirmed"] == 0
    assert bob.balance()["confirmed"] == 0

    bob_address = bob.new_address()
    raw = alice.cli("payto", bob_address, "0.3", "--feerate", FEERATE)
    assert isinstance(raw, str) and raw, raw
    # The node agrees the signed transaction is valid before anyone broadcasts it.
    verdict = regtest_chain.testmempoolaccept(raw)[0]
    assert verdict["allowed"] is True, verdict

    txid = alice.daemon.cli("broadcast", raw)
    assert txid == verdict["txid"]
    assert regtest_chain.node.in_mempool(txid)
    wait_for_tx([alice, bob], txid, confirmations=0)

    block_hash = regtest_chain.mine(1)[0]
    wait_for_height([alice, bob], regtest_chain.node.height())
    wait_for_tx([alice, bob], txid, confirmations=1)

    on_chain = regtest_chain.getrawtransaction(txid)
    assert on_chain["blockhash"] == block_hash
    assert on_chain["confirmations"] == 1
    assert txid in regtest_chain.node.call("getblock", block_hash)["tx"]
    paid = [o for o in on_chain["vout"] if o["scriptPubKey"].get("address") == bob_address]
    assert [Decimal(o["value"]) for o in paid] == [Decimal("0.3")]

    fee = _fee_from_node(regtest_chain, txid)
    assert Decimal("0") < fee < Decimal("0.001"), fee
    assert wait_for_balance(bob, Decimal("0.3")) == {
        "confirmed": Decimal("0.3"), "unconfirmed": Decimal("0"), "unmatured": Decimal("0")}
    assert wait_for_balance(alice, Decimal("0.7") - fee) == {
        "confirmed": Decimal("0.7") - fee, "unconfirmed": Decimal("0"), "unmatured": Decimal("0")}


def _forge_signature(raw_hex: str) -> str:
    """The same transaction with one bit of its first input's ECDSA signature flipped.

    The flip is inside R, so the DER encoding stays valid and only the signature check can fail.
    """
    from electrum.transaction import Transaction

    tx = Transaction(raw_hex)
    sig = tx.inputs()[0].witness_elements()[0]
    assert sig[0] == 0x30 and sig[2] == 0x02, "not a DER signature"
    forged = bytearray(sig)
    forged[4 + sig[3] // 2] ^= 0x01
    assert raw_hex.count(sig.hex()) == 1
    return raw_hex.replace(sig.hex(), bytes(forged).hex())


def test_forged_signature_is_refused_by_node_through_electrum_broadcast(
    regtest_chain: RegtestChain, electrum_wallets
) -> None:
    from electrum.interface import TxBroadcastServerReturnedError, sanitize_tx_broadcast_response

    (carol,) = electrum_wallets(1, names=["carol"])
    _fund_confirmed(regtest_chain, carol, "0.5")
    good = carol.cli("payto", regtest_chain.node.miner_address, "0.1", "--feerate", FEERATE)
    bad = _forge_signature(good)
    assert bad != good

    good_verdict, bad_verdict = regtest_chain.testmempoolaccept([good])[0], regtest_chain.testmempoolaccept([bad])[0]
    assert good_verdict["allowed"] is True, good_verdict
    assert bad_verdict["allowed"] is False
    assert bad_verdict["txid"] == good_verdict["txid"]  # the witness is not in the txid
    reason = bad_verdict["reject-reason"]
    # "mandatory-" (Core < 29) or "mempool-" (Core/Knots 29+) "script-verify-flag-failed (...)".
    assert "script-verify-flag-failed (Signature must be zero" in reason, reason

    # Electrum's error for the node's reason, made by Electrum's own code, is what the caller gets.
    expected = TxBroadcastServerReturnedError(sanitize_tx_broadcast_response(reason))
    assert str(expected) and str(expected) in reason

    with pytest.raises(ElectrumRPCError) as over_rpc:
        carol.call("broadcast", tx=bad)
    assert over_rpc.value.exception == repr(expected)

    with pytest.raises(ElectrumCommandError) as over_cli:
        carol.daemon.cli("broadcast", bad)
    # The CLI prints the daemon's traceback; its exception line is Electrum's error, verbatim.
    raised = [line for line in over_cli.value.stderr.splitlines() if "TxBroadcast" in line and ": " in line]
    assert raised == [f"electrum.interface.TxBroadcastServerReturnedError: {expected}"], over_cli.value.stderr

    txid = bad_verdict["txid"]
    assert not regtest_chain.node.in_mempool(txid)
    regtest_chain.mine(1)
    with pytest.raises(RPCError) as missing:
        regtest_chain.getrawtransaction(txid)
    assert missing.value.code == -5

    # Only the signature was wrong: the untouched transaction goes through the same path.
    assert carol.call("broadcast", tx=good) == txid
    regtest_chain.mine(1)
    assert regtest_chain.getrawtransaction(txid)["confirmations"] == 1
