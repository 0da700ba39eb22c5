"""The recovery path from Electrum's Qt GUI on the regtest chain (child process:
qt_recover_probe.py): the signer picker's recovery policy, the descriptor backup dialog, the
overview's recovery column and the Recover action, refused before maturity and confirmed after.
Screenshots go to docs/screenshots/."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import PyQt6.QtWidgets  # noqa: F401  (no skip: a missing PyQt6 must fail the run)

from tests.harness.electrum import REPO, ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import start_wallets, stop_wallets

pytestmark = [pytest.mark.gui, pytest.mark.chain, pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"
SHOTS = Path(REPO) / "docs" / "screenshots"


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return build_plugin_zip(tmp_path_factory.mktemp("zip"))


@pytest.fixture(scope="module")
def run(regtest_chain, plugin_zip, tmp_path_factory):
    """One GUI run (bob and carol advertise, so the picker finds them, then stay silent)."""
    chain = regtest_chain
    tmp_path = tmp_path_factory.mktemp("qt-recover")
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
    gui = ElectrumDaemon(tmp_path / "alice", plugin_zip=plugin_zip, name="qt-recover")
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
    script = Path(__file__).with_name("qt_recover_probe.py")
    res = subprocess.run(gui.namespace_argv([sys.executable, str(script), str(spec_file)]),
                         env=env, capture_output=True, text=True, timeout=280)
    lines = [line for line in res.stdout.splitlines() if line.startswith("PROBE")]
    assert lines, (res.returncode, res.stderr[-4000:])
    out = json.loads(lines[-1][len("PROBE"):])
    assert "exception" not in out, out["exception"]
    return chain, bob, carol, spec, out


def test_gui_recover_refused_before_maturity_then_broadcast_and_confirmed(run):
    chain, bob, carol, spec, out = run
    assert out["online"] is True
    (descriptor,) = out["outputs"]
    assert "and_v(v:pk(" in descriptor and descriptor.split("#")[0].endswith(",older(3)))")
    assert out["backup_text"] == descriptor and out["backup_close_enabled_before"] is False
    assert out["overview_recovery"] is True, out["overview_recovery_text"]
    (row,) = out["recover_rows"]
    assert row[2] == str(out["fund_height"]) and row[3] == str(out["fund_height"] + 3)
    assert row[4] == "not yet"
    assert out["early_error"] == "RecoveryNotMature"
    assert f"opens at block {out['fund_height'] + 3}" in out["early_status"]
    assert out["late_error"] is None, out["late_error"]
    assert out["broadcast_txid"] == out["recovery_txid"] and "Recovered" in out["late_status"]
    assert chain.node.in_mempool(out["recovery_txid"])
    chain.mine(1)
    tx = chain.getrawtransaction(out["recovery_txid"])
    assert tx["confirmations"] >= 1
    assert tx["vin"][0]["sequence"] == 3 and len(tx["vin"][0]["txinwitness"]) == 3
    assert {"backup_dialog.png", "recover_dialog_refused.png",
            "recover_dialog_broadcast.png"} <= set(out["screenshots"])
