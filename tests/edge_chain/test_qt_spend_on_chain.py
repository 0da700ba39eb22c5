"""The Qt spend path on a real regtest chain.

alice is a real Electrum 4.8 Qt main window (offscreen, in a child process, zip plugin loaded by
Electrum's own plugin machinery, connected only to the chain's ElectrumX); bob and carol are real
Electrum daemons in their own processes, advertised in the DHT and driven only through plugin
commands. alice creates the MuSig2 output from the signer picker, the node funds it, and the
spend goes through the GUI's real buttons: Tools menu -> outputs/sessions overview -> Spend ->
Request signatures; bob and carol review and approve with the ``approve`` command; the progress
dialog follows join, round 1, round 2, signed, broadcast. This test then mines a block and checks
the spend through the node's RPC (confirmations, inputs, outputs).

The same run checks the command path of the co-signer review: a request whose message is not
its transaction's sighash, and one whose PSBT lacks an input's amount and script, are refused by
bob's and carol's plugins, and ``approve`` refuses them (tests/edge_gui/test_qt_edge.py checks
the GUI path of the same refusals).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import PyQt6.QtWidgets  # noqa: F401  (no skip: a missing PyQt6 must fail the run)

from tests.harness.electrum import REPO, ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import start_wallets, stop_wallets, wait_for_height

pytestmark = [pytest.mark.gui, pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"
SHOTS = Path(REPO) / "docs" / "screenshots"


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return build_plugin_zip(tmp_path_factory.mktemp("zip"))


@pytest.fixture(scope="module")
def run(regtest_chain, plugin_zip, tmp_path_factory):
    """One GUI run for both tests (the co-signer daemons live as long as the module)."""
    chain = regtest_chain
    tmp_path = tmp_path_factory.mktemp("qt-chain")
    wallets = start_wallets(chain, 2, names=["bob", "carol"], plugin_zip=plugin_zip)
    try:
        yield _run(chain, wallets, plugin_zip, tmp_path)
    finally:
        stop_wallets(wallets)


def _run(chain, wallets, plugin_zip, tmp_path):
    bob, carol = wallets
    b = bob.cmd(P + "node_start")
    seed = f"127.0.0.1:{b['dht'][1]}"
    carol.cmd(P + "node_start", bootstrap=seed)
    for w in (bob, carol):
        w.cmd(P + "advertise", nickname=w.name, tx_types="spend", max_amount=10**8, fee=100)
    gui = ElectrumDaemon(tmp_path / "alice", plugin_zip=plugin_zip, name="qt-alice")
    SHOTS.mkdir(parents=True, exist_ok=True)
    spec = {"repo": str(REPO), "workdir": str(gui.workdir), "shots": str(SHOTS),
            "server": chain.electrum_server, "bootstrap": ["127.0.0.1", b["dht"][1]],
            "node": {"port": chain.node.rpc_port, "user": chain.node.cookie[0],
                     "password": chain.node.cookie[1], "miner": chain.node.miner_address},
            "cosigners": [{"name": w.name, "datadir": str(w.daemon.datadir),
                           "wallet_path": w.wallet_path,
                           "pubkey": w.cmd(P + "participant_key")["pubkey"]} for w in (bob, carol)]}
    spec_file = tmp_path / "probe.json"
    spec_file.write_text(json.dumps(spec))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(gui.workdir))
    script = Path(__file__).with_name("qt_spend_probe.py")
    res = subprocess.run(gui.namespace_argv([sys.executable, str(script), str(spec_file)]),
                         env=env, capture_output=True, text=True, timeout=280)
    lines = [line for line in res.stdout.splitlines() if line.startswith("PROBE")]
    assert lines, (res.returncode, res.stderr[-4000:])
    out = json.loads(lines[-1][len("PROBE"):])
    assert "exception" not in out, out["exception"]
    return chain, bob, carol, spec, out


def test_gui_spend_is_cosigned_broadcast_and_confirmed(run):
    chain, bob, carol, spec, out = run
    assert out["plugin_module"] == "electrum_external_plugins.musig2_plugin.qt"
    assert out["online"] is True
    assert out["picker_keys"] == sorted(c["pubkey"] for c in spec["cosigners"])
    assert out["outputs"] == [out["expected_address"]]
    assert out["overview_confirmed"] is True, "the overview never showed the funded balance"
    assert out["spend_error"] == ""

    # bob and carol reviewed the GUI's request from its transaction, then approved it
    for name in ("bob", "carol"):
        review = out["reviews"][name]
        assert review["status"] == "pending" and review["role"] == "cosigner", review
        assert review["txid"] == out["txid"]
        paid = [o["value_sats"] for o in review["review"]["outputs"] if o["address"] == out["payee"]]
        assert paid == [out["pay_sats"]]
        assert out["approved"][name] in ("approved", "signed")

    # the progress dialog went through every step, and the wallet sent the transaction once
    assert out["final_status"] == "broadcast", out["final_error"]
    assert out["broadcast_txid"] == out["txid"] and out["broadcasts"] == 1
    assert all(label.startswith("…") for label in out["progress_at_request"][1:])
    assert all(label.startswith("✔") for label in out["progress_labels"]), out["progress_labels"]
    assert out["cancel_enabled_after"] is False
    assert out["progress_tx_label"] == f"Transaction {out['txid']} (broadcast)"
    print("GUI spend: session phases (s after the request):", out["phases"], "probe marks:", out["marks"])
    assert [k for k in ("joined", "round1", "round2", "signed", "broadcast") if k in out["phases"]] == \
        ["joined", "round1", "round2", "signed", "broadcast"]
    assert [out["request_id"][:10], "creator", "broadcast"] == \
        [out["sessions_rows"][0][0][:10], out["sessions_rows"][0][1], out["sessions_rows"][0][2]]

    # the node: in the mempool, then confirmed in a block, spending the funded coin
    txid = out["txid"]
    assert chain.node.in_mempool(txid)
    chain.mine(1)
    wait_for_height([bob, carol], chain.node.height())
    onchain = chain.getrawtransaction(txid)
    assert onchain["confirmations"] >= 1
    assert [v["txid"] for v in onchain["vin"]] == [out["fund_txid"]]
    assert len(onchain["vin"][0]["txinwitness"]) == 1 and len(onchain["vin"][0]["txinwitness"][0]) == 128
    paid = [o for o in onchain["vout"] if o["scriptPubKey"].get("address") == out["payee"]]
    assert [Decimal(str(o["value"])) for o in paid] == [Decimal(out["pay_sats"]) / 10**8]

    for name in ("progress_dialog_on_chain.png", "spend_dialog_on_chain.png"):
        assert name in out["screenshots"] and (SHOTS / name).stat().st_size > 5_000


def test_a_request_whose_message_differs_is_refused_through_the_approve_command(run):
    _chain, _bob, _carol, _spec, out = run
    for name in ("bob", "carol"):
        bad = out["bad"][f"message_differs:{name}"]
        assert bad["status"] == "refused" and bad["error"].startswith("SighashMismatch"), bad
        assert "refused" in bad["approve"] and "SighashMismatch" in bad["approve"], bad
        assert bad["after"] == ["refused", []]


def test_a_request_without_an_inputs_amount_is_refused_through_the_approve_command(run):
    _chain, _bob, _carol, _spec, out = run
    for name in ("bob", "carol"):
        bad = out["bad"][f"missing_amount:{name}"]
        assert bad["status"] == "refused" and bad["error"].startswith("MissingInputInfo"), bad
        assert "refused" in bad["approve"] and "MissingInputInfo" in bad["approve"], bad
        assert bad["after"] == ["refused", []]
