"""Recovery leaves on a real regtest chain: Electrum 4.8 daemons with the plugin zip, driven by
plugin commands, and the node's verdict (bitcoind + ElectrumX from tests/harness).

Funder leaf and(v:pk(alice),older(10)): co-signers import the descriptor only with the announced
policy; the node derives the same address from the tree (its own miniscript code); a recovery
before maturity is refused by the plugin and the same transaction, forced to the node, is refused
as non-BIP68-final; after 10 blocks a wallet restored from alice's seed plus the descriptor
recovers by the script path (confirmed), and the same output's key path still spends another coin
through the MuSig2 PSBT flow with bob and carol (confirmed).

2-of-3 leaf: alice goes silent; after 5 blocks bob and carol recover by passing the PSBT.
"""
from __future__ import annotations

import contextlib
import json
import time

import pytest

from tests.harness.electrum import build_plugin_zip
from tests.harness.wallets import ChainWallet, ElectrumRPCError, wait_for_height

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


def _coins(w, address, count):
    def check():
        for o in w.cmd(P + "list_outputs"):
            if o["address"] == address:
                coins = [c for c in o["coins"] if c["height"] > 0]
                return coins if len(coins) == count else None
        return None
    return _wait(check, what=f"{count} confirmed coin(s) on {address}")


def _mine(chain, ws, n):
    chain.mine(n)
    wait_for_height(ws, chain.node.height())


@contextlib.contextmanager
def _regtest_net():
    """Electrum's address code in this process, on regtest, for one block of test code."""
    from electrum import constants
    old = constants.net
    constants.BitcoinRegtest.set_as_network()
    try:
        yield
    finally:
        constants.net = old


def _unsigned_recovery_psbt(descriptor, outpoint, value, destination, fee):
    """The recovery PSBT built here from public data only (descriptor, coin, destination, fee)."""
    from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, build_recovery_spend,
                                             psbt_base64)
    with _regtest_net():
        out = MusigOutput.from_descriptor(descriptor)
        txid, idx = outpoint.split(":")
        tx = build_recovery_spend([MusigCoin(txid, int(idx), value, out)], destination,
                                  fee_sats=fee)
        return psbt_base64(tx)


def _node_address_of_tree(chain, made):
    """The node derives the address from tr(x(P), LEAF): its own taproot + miniscript code."""
    leaf = made["recovery"]["miniscript"]
    desc = f"tr({made['internal_key'][2:]},{leaf})"
    info = chain.node.call("getdescriptorinfo", desc)
    return chain.node.call("deriveaddresses", info["descriptor"])[0]


def _restored(chain, plugin_zip, seed, name):
    """A new daemon whose wallet is restored from ``seed`` (nothing else carried over)."""
    w = ChainWallet(chain, name, plugin_zip=plugin_zip).start()
    path = str(w.daemon.wallet_path("restored"))
    w.rpc.call("restore", text=seed, wallet_path=path)
    w.rpc.call("load_wallet", wallet_path=path)
    w.wallet_path = path
    return w


def test_funder_leaf_refused_before_maturity_then_recovered_and_key_path_still_works(
        regtest_chain, electrum_wallets, plugin_zip):
    chain = regtest_chain
    alice, bob, carol = electrum_wallets(3, names=["alice", "bob", "carol"], plugin_zip=plugin_zip)
    ws = [alice, bob, carol]
    ka, kb, kc = (w.cmd(P + "participant_key")["pubkey"] for w in ws)
    made = alice.cmd(P + "create_output", keys=f"{kb},{kc}", recovery="funder:10")
    address, descriptor = made["address"], made["descriptor"]
    assert f"and_v(v:pk({ka}),older(10))" in descriptor and "back up" in made["backup"]
    announced = f"funder:{ka}:10"

    # a co-signer refuses a tree other than the announced policy (and a tree where none was)
    for wrong in (f"funder:{ka}:20", f"funder:{kb}:10", "2-of-3:10", None):
        with pytest.raises(ElectrumRPCError, match="RecoveryPolicyMismatch|RecoveryPolicyError"):
            carol.cmd(P + "create_output", descriptor=descriptor, recovery=wrong)
    assert carol.cmd(P + "list_outputs") == []
    for w in (bob, carol):
        got = w.cmd(P + "create_output", descriptor=descriptor, recovery=announced)
        assert got["address"] == address and "funder" in got["recovery"]["text"]
    assert _node_address_of_tree(chain, made) == address

    # coin A; the recovery is refused by the plugin before block h+10
    chain.fund(address, "0.3")
    _mine(chain, ws, 1)
    (coin_a,) = _coins(alice, address, 1)
    h = coin_a["height"]
    info = alice.cmd(P + "recovery_info", output=address)
    assert info["coins"][0]["recoverable_from_height"] == h + 10
    assert info["coins"][0]["recoverable_now"] is False
    dest = alice.new_address()
    with pytest.raises(ElectrumRPCError, match=f"RecoveryNotMature: .*opens at block {h + 10}"):
        alice.cmd(P + "recover", output=address, destination=dest, fee=1000)
    with pytest.raises(ElectrumRPCError, match="ParticipantMismatch"):
        bob.cmd(P + "recover", output=address, destination=dest, fee=1000)   # not the funder

    # the same transaction, forced: signed (alice's recovery_sign does not judge maturity)
    psbt = _unsigned_recovery_psbt(descriptor, coin_a["outpoint"], coin_a["value_sats"], dest, 1000)
    forced = alice.cmd(P + "recovery_sign", psbt=psbt)
    assert forced["complete"] is True
    verdict = chain.testmempoolaccept(forced["tx"])[0]
    assert verdict["allowed"] is False and verdict["reject-reason"] == "non-BIP68-final", verdict

    # one block short: still refused by both
    _mine(chain, ws, 8)
    with pytest.raises(ElectrumRPCError, match="RecoveryNotMature: .*1 more block"):
        alice.cmd(P + "recover", output=address, destination=dest, fee=1000)
    assert chain.testmempoolaccept(forced["tx"])[0]["reject-reason"] == "non-BIP68-final"
    _mine(chain, ws, 1)

    # alice's device is gone: her seed plus the descriptor recover the output and its leaf
    seed = alice.cmd("getseed")
    alice.stop()
    ws = [bob, carol]
    alice2 = _restored(chain, plugin_zip, seed, "alice2")
    try:
        ws.append(alice2)
        assert alice2.cmd(P + "participant_key")["pubkey"] == ka
        got = alice2.cmd(P + "create_output", descriptor=descriptor, recovery=announced)
        assert got["address"] == address
        _coins(alice2, address, 1)
        rec = alice2.cmd(P + "recover", output=address, destination=dest, fee=1000)
        assert rec["complete"] is True and rec["txid"] == forced["txid"]
        assert "funder" in rec["review"]["inputs"][0]["recovery"]
        assert chain.testmempoolaccept(rec["tx"])[0]["allowed"] is True
        decoded = chain.node.call("decoderawtransaction", rec["tx"])
        assert decoded["vin"][0]["sequence"] == 10
        witness = decoded["vin"][0]["txinwitness"]
        rec_leaf_script = witness[1]
        rec_leaf_hash = chain.node.call("decodepsbt", rec["psbt"])["inputs"][0][
            "taproot_script_path_sigs"][0]["leaf_hash"]
        assert len(witness) == 3 and len(witness[0]) == 128 and witness[2][2:] == made["internal_key"][2:]
        assert alice2.cmd(P + "broadcast", tx=rec["tx"])["txid"] == rec["txid"]
        _mine(chain, ws, 1)
        assert chain.getrawtransaction(rec["txid"])["confirmations"] >= 1

        # coin B of the same output: the key path through the MuSig2 PSBT flow (merkle-root tweak)
        chain.fund(address, "0.2")
        _mine(chain, ws, 1)
        _coins(alice2, address, 1)
        _coins(bob, address, 1)
        _coins(carol, address, 1)
        req = alice2.cmd(P + "request_spend", outputs=f'[["{dest}", 19990000]]', fee=10000)
        assert "funder" in req["review"]["inputs"][0]["recovery"]
        psbt, sighashes = req["psbt"], req["sighashes"]
        vin = chain.node.call("decodepsbt", psbt)["inputs"][0]     # what other wallets read
        assert vin["taproot_internal_key"] == made["internal_key"][2:]
        assert vin["taproot_scripts"][0]["script"] == rec_leaf_script
        assert vin["taproot_merkle_root"] == rec_leaf_hash
        for w in (alice2, bob, carol):
            nonce = w.cmd(P + "psbt_nonce", psbt=psbt, sighashes=json.dumps(sighashes))
            assert "funder" in nonce["review"]["inputs"][0]["recovery"]   # every review shows it
            psbt = nonce["psbt"]
        for w in (alice2, bob, carol):
            psbt = w.cmd(P + "psbt_sign", psbt=psbt)["psbt"]
        final = carol.cmd(P + "psbt_finalize", psbt=psbt)
        decoded = chain.node.call("decoderawtransaction", final["tx"])
        assert len(decoded["vin"][0]["txinwitness"]) == 1          # one key-path signature
        assert chain.testmempoolaccept(final["tx"])[0]["allowed"] is True
        bob.cmd(P + "broadcast", tx=final["tx"])
        _mine(chain, ws, 1)
        assert chain.getrawtransaction(final["txid"])["confirmations"] >= 1
    finally:
        alice2.stop()


def test_two_of_three_leaf_recovered_by_two_while_one_is_silent(
        regtest_chain, electrum_wallets, plugin_zip):
    chain = regtest_chain
    alice, bob, carol = electrum_wallets(3, names=["alice", "bob", "carol"], plugin_zip=plugin_zip)
    ws = [alice, bob, carol]
    ka, kb, kc = (w.cmd(P + "participant_key")["pubkey"] for w in ws)
    made = alice.cmd(P + "create_output", keys=f"{kb},{kc}", recovery="2-of-3:5")
    address, descriptor = made["address"], made["descriptor"]
    assert "multi_a(2," in descriptor
    for w in (bob, carol):
        assert w.cmd(P + "create_output", descriptor=descriptor,
                     recovery="2-of-3:5")["address"] == address
    assert _node_address_of_tree(chain, made) == address
    chain.fund(address, "0.25")
    _mine(chain, ws, 1)
    (coin,) = _coins(bob, address, 1)
    _coins(carol, address, 1)
    alice.stop()                                    # alice goes silent from here on
    ws = [bob, carol]
    dest = carol.new_address()
    with pytest.raises(ElectrumRPCError, match=f"RecoveryNotMature: .*opens at block {coin['height'] + 5}"):
        bob.cmd(P + "recover", output=address, destination=dest, feerate=2)
    _mine(chain, ws, 4)
    first = bob.cmd(P + "recover", output=address, destination=dest, feerate=2)
    assert first["complete"] is False and first["tx"] is None
    # the node's own PSBT parser reads the taproot fields other wallets need
    vin = chain.node.call("decodepsbt", first["psbt"])["inputs"][0]
    assert vin["taproot_internal_key"] == made["internal_key"][2:]
    (leaf,) = vin["taproot_scripts"]
    assert leaf["leaf_ver"] == 0xC0 and leaf["control_blocks"][0][2:] == made["internal_key"][2:]
    assert vin["taproot_merkle_root"] is not None
    (psig,) = vin["taproot_script_path_sigs"]
    assert psig["pubkey"] == kb[2:] and len(psig["sig"]) == 128
    derivs = {d["pubkey"]: d for d in vin["taproot_bip32_derivs"]}
    assert derivs[kb[2:]]["leaf_hashes"] == [psig["leaf_hash"]]
    assert derivs[kb[2:]]["path"].endswith("/327h/0h")
    assert derivs[made["internal_key"][2:]]["path"] == "m"
    with pytest.raises(ElectrumRPCError, match="InvalidFinalSignature: .*1 of the 2"):
        bob.cmd(P + "recovery_finalize", psbt=first["psbt"])
    second = carol.cmd(P + "recovery_sign", psbt=first["psbt"])
    assert second["complete"] is True
    assert second["review"]["outputs"][0]["address"] == dest
    assert "2 of the 3" in second["review"]["inputs"][0]["recovery"]
    witness = chain.node.call("decoderawtransaction", second["tx"])["vin"][0]["txinwitness"]
    assert sorted(len(x) for x in witness[:3]) == [0, 128, 128] and len(witness) == 5
    assert chain.testmempoolaccept(second["tx"])[0]["allowed"] is True
    assert carol.cmd(P + "broadcast", tx=second["tx"])["txid"] == second["txid"]
    _mine(chain, ws, 1)
    assert chain.getrawtransaction(second["txid"])["confirmations"] >= 1
