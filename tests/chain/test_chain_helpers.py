"""The harness' helpers against the real node, server and daemons, including how they fail."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest

from tests.harness import chain as chain_module
from tests.harness.chain import Bitcoind, ChainSetupError, ElectrumX, RegtestChain, RPCError, wait_until
from tests.harness.wallets import ElectrumRPCError, wait_for_height, wait_for_tx

pytestmark = [pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]


def test_mine_fund_and_node_queries(regtest_chain: RegtestChain) -> None:
    node = regtest_chain.node
    start = node.height()
    assert start > 100  # coinbase outputs are mature from the start
    hashes = regtest_chain.mine(3)
    assert len(hashes) == 3 and node.height() == start + 3
    assert regtest_chain.server.height() == start + 3  # mine() waits for ElectrumX

    address = node.call("getnewaddress", wallet=node.MINER_WALLET)
    txid = regtest_chain.fund(address, "0.12345678")
    assert node.in_mempool(txid)
    tx = regtest_chain.getrawtransaction(txid)
    ours = [o for o in tx["vout"] if o["scriptPubKey"].get("address") == address]
    assert [Decimal(o["value"]) for o in ours] == [Decimal("0.12345678")]
    assert "confirmations" not in tx  # still unconfirmed

    again = regtest_chain.testmempoolaccept(regtest_chain.getrawtransaction(txid, verbose=False))[0]
    assert again["allowed"] is False and again["reject-reason"] == "txn-already-in-mempool"

    block = regtest_chain.mine(1)[0]
    assert regtest_chain.getrawtransaction(txid)["blockhash"] == block


def test_node_errors_are_typed_and_unchanged(regtest_chain: RegtestChain) -> None:
    with pytest.raises(RPCError) as unknown_tx:
        regtest_chain.getrawtransaction("00" * 32)
    assert unknown_tx.value.code == -5 and unknown_tx.value.method == "getrawtransaction"

    with pytest.raises(RPCError) as bad_address:
        regtest_chain.fund("not-an-address", "1")
    assert bad_address.value.code == -5 and "address" in bad_address.value.message.lower()

    with pytest.raises(RPCError) as garbage:
        regtest_chain.testmempoolaccept("zz")
    assert garbage.value.code == -22  # RPC_DESERIALIZATION_ERROR

    with pytest.raises(RPCError) as no_method:
        regtest_chain.node.call("no_such_method")
    assert no_method.value.code == -32601


def test_wait_helpers_follow_three_daemons_and_time_out_clearly(regtest_chain: RegtestChain, electrum_wallets) -> None:
    wallets = electrum_wallets(3)
    target = regtest_chain.node.height() + 2
    regtest_chain.mine(2)
    wait_for_height(wallets, target)
    assert all(w.height() == target for w in wallets)

    txid = regtest_chain.fund(wallets[1].new_address(), "0.25")
    wait_for_tx([wallets[1]], txid, confirmations=0)
    assert wallets[1].tx_confirmations(txid) == 0
    assert wallets[0].tx_confirmations(txid) is None  # not this wallet's transaction

    with pytest.raises(TimeoutError, match=f"tx {txid} with 1 confirmation"):
        wait_for_tx([wallets[1]], txid, confirmations=1, timeout=1)
    with pytest.raises(TimeoutError, match=f"at height {target + 1}"):
        wait_for_height(wallets, target + 1, timeout=1)

    with pytest.raises(ElectrumRPCError) as bad:
        wallets[0].call("broadcast", tx="00")
    assert bad.value.exception  # Electrum's own exception text, not a harness paraphrase


def test_a_server_that_cannot_start_is_stopped_and_removed(regtest_chain: RegtestChain) -> None:
    """ElectrumX given wrong node credentials never becomes ready: start() gives up, kills it by
    pid and removes its directory."""
    server = ElectrumX(regtest_chain.node)
    real_cookie = regtest_chain.node.cookie
    regtest_chain.node.cookie = ("wrong", "credentials")
    try:
        with pytest.raises(TimeoutError, match="ElectrumX to serve"):
            server.start(timeout=5)
    finally:
        regtest_chain.node.cookie = real_cookie
    assert server.proc is not None and server.proc.poll() is not None
    assert server.dir is not None and not server.dir.exists()


def test_a_crashed_server_fails_the_wait_at_once_with_its_log(regtest_chain: RegtestChain) -> None:
    server = ElectrumX(regtest_chain.node).start()
    try:
        server.proc.kill()  # a crash, as far as the harness can tell
        server.proc.wait()
        started = time.monotonic()
        with pytest.raises(ChainSetupError, match="electrumx exited with status -9; log tail:") as failed:
            server.wait_for_height(regtest_chain.node.height() + 1000, timeout=60)
        assert time.monotonic() - started < 5  # not after the whole timeout
        assert "peer discovery is disabled" in str(failed.value)  # its log tail is included
    finally:
        server.stop()
    assert not server.dir.exists()


def test_a_port_taken_before_the_server_binds_it_is_retried(regtest_chain: RegtestChain, monkeypatch) -> None:
    """Free ports are picked before the program binds them; if another program takes one in
    between, the server dies of it and start() tries again on new ports."""
    real_free_port = chain_module.free_port
    picked: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]

        def first_one_taken() -> int:
            picked.append(busy if not picked else real_free_port())
            return picked[-1]

        monkeypatch.setattr(chain_module, "free_port", first_one_taken)
        server = ElectrumX(regtest_chain.node).start(timeout=60)
        try:
            assert len(picked) == 4 and picked[0] == busy  # two attempts, two ports each
            assert server.port not in (busy, 0)
            assert server.height() == regtest_chain.node.height()
        finally:
            server.stop()


def test_a_node_whose_rpc_port_was_taken_is_retried(monkeypatch) -> None:
    real_free_port = chain_module.free_port
    picked: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]

        def first_one_taken() -> int:
            picked.append(busy if not picked else real_free_port())
            return picked[-1]

        monkeypatch.setattr(chain_module, "free_port", first_one_taken)
        node = Bitcoind()
        try:
            try:
                node.start(timeout=60)
            except ChainSetupError as exc:
                pytest.fail(f"not retried: {exc}")
            assert picked[0] == busy and len(picked) == 2 and node.rpc_port == picked[1]
            assert node.height() == 0
        finally:
            node.stop()


def test_wait_until_reports_the_last_probe_error() -> None:
    def probe() -> None:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(TimeoutError, match="nobody home"):
        wait_until(probe, timeout=0.3, what="a probe that always fails")
