"""Child process of tests/edge_chain/test_qt_recover_on_chain.py: alice's real Electrum Qt main
window (offscreen, zip plugin loaded by Electrum's plugin machinery) on the regtest chain; bob
and carol are real Electrum daemons that advertise themselves (and then stay silent).

The recovery path from the GUI: send tab -> signer picker with the policy "I alone, after 3
blocks" -> the backup dialog (descriptor text + QR) -> the node pays the output -> Tools menu ->
overview (its recovery column shows the block from which recovery is possible) -> Recover... ->
the Recover button is refused before maturity, naming the height -> the probe mines the blocks
-> Recover again: built, signed, broadcast. Prints one PROBE{json} line; the parent test mines
and checks the recovery on the node.

argv: <json file with: workdir, shots, server, node {port, user, password, miner}, bootstrap,
       cosigners [{name, datadir, wallet_path, pubkey}]>
"""
import asyncio
import json
import os
import sys
import time
import traceback

from PyQt6.QtWidgets import QApplication, QPushButton

from electrum import constants, util
from electrum.simple_config import SimpleConfig

ARGS = json.loads(open(sys.argv[1]).read())
sys.path.insert(0, ARGS["repo"])
from tests.harness.chain import NodeRPC  # noqa: E402
from tests.harness.wallets import DaemonRPC  # noqa: E402

constants.BitcoinRegtest.set_as_network()
loop, stop_loop, loop_thread = util.create_and_start_event_loop()
workdir, shots = ARGS["workdir"], ARGS["shots"]
config = SimpleConfig({"electrum_path": workdir, "regtest": True, "oneserver": True,
                       "server": ARGS["server"], "auto_connect": False})
config.DONT_SHOW_TESTNET_WARNING = True     # modal message boxes would block offscreen
config.AUTOMATIC_CENTRALIZED_UPDATE_CHECKS = False
import faulthandler  # noqa: E402
faulthandler.dump_traceback_later(int(os.environ.get("PROBE_HANG_S", "200")), exit=True)

from electrum.daemon import Daemon  # noqa: E402
from electrum.gui.qt import ElectrumGui  # noqa: E402
from electrum.plugin import Plugins  # noqa: E402
from electrum.wallet import create_new_wallet  # noqa: E402

P = "musig2_plugin_"
out: dict = {"marks": {}}
T0 = time.monotonic()


def mark(name):
    out["marks"][name] = round(time.monotonic() - T0, 3)


def run(coro, timeout=30):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def pump(pred, timeout=20.0, every=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        got = pred()
        if got:
            return got
        time.sleep(every)
    return None


def shot(widget, name):
    QApplication.processEvents()
    widget.grab().save(os.path.join(shots, name))
    out.setdefault("screenshots", []).append(name)


def top(cls_name):
    return [w for w in QApplication.topLevelWidgets()
            if type(w).__name__ == cls_name and w.isVisible()]


class Cosigner:
    """bob or carol: a real Electrum daemon, driven through plugin commands only."""

    def __init__(self, spec):
        self.name, self.pubkey = spec["name"], spec["pubkey"]
        self.rpc, self.wallet_path = DaemonRPC(spec["datadir"]), spec["wallet_path"]

    def cmd(self, method, **kw):
        return self.rpc.call(P + method, wallet_path=self.wallet_path, **kw)

    def request(self, rid):
        return next((r for r in self.cmd("list_requests", poll=False) if r["request_id"] == rid), None)


node = NodeRPC(ARGS["node"]["port"], ARGS["node"]["user"], ARGS["node"]["password"])
cosigners = [Cosigner(c) for c in ARGS["cosigners"]]
daemon = Daemon(config, listen_jsonrpc=False)
plugins = Plugins(config, "qt")
gui = ElectrumGui(config=config, daemon=daemon, plugins=plugins)
try:
    plugin = plugins.get("musig2_plugin")
    out["plugin_module"] = type(plugin).__module__
    pkg = sys.modules[type(plugin).__module__.rsplit(".", 1)[0]]
    from importlib import import_module
    bridge = import_module(pkg.__name__ + ".wallet_bridge")
    cosign = import_module(pkg.__name__ + ".app.cosign")
    coord = import_module(pkg.__name__ + ".coordinator")

    path = os.path.join(workdir, "wallets", "alice")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    create_new_wallet(path=path, config=config, password=None, encrypt_file=False)
    wallet = daemon.load_wallet(path, None)
    window = gui._create_window_for_wallet(wallet)
    window.resize(1100, 720)
    window.show()
    out["online"] = bool(pump(lambda: wallet.network is not None and wallet.network.is_connected(), 60))
    run(plugin.start_node(wallet, None, bootstrap=[tuple(ARGS["bootstrap"])]))
    me = plugin.cached_participant_key(wallet).pubkey
    mark("node started")

    # Send tab button -> picker; policy: me alone after 3 blocks.
    window.tabs.setCurrentWidget(window.send_tab)
    window.send_tab.findChild(QPushButton, "musig2_cosign_button").click()
    picker = pump(lambda: [d for d in top("SignerPickerDialog") if d.table.rowCount() >= 2], 60)
    picker = picker[0]
    picker.policy.kind.setCurrentIndex(1)
    picker.policy.blocks.setValue(3)
    picker.table.selectAll()
    picker.resize(900, 440)
    shot(picker, "signer_picker_recovery_policy.png")
    picker.create_button.click()
    stored = plugin.vaults(wallet).all()
    out["outputs"] = [s.output.descriptor for s in stored]
    address = stored[0].output.address()
    out["address"] = address
    backup = pump(lambda: top("BackupDialog"), 10)
    out["backup_text"] = backup[0].text.toPlainText() if backup else None
    if backup:
        backup[0].resize(660, 560)
        shot(backup[0], "backup_dialog.png")
        out["backup_close_enabled_before"] = [b for b in backup[0].findChildren(QPushButton)][-1].isEnabled()
        backup[0].confirmed.setChecked(True)
        backup[0].close()
    window.send_tab.payto_e.do_clear()
    mark("output created")

    fund_txid = node.call("sendtoaddress", address, "0.2", wallet="miner")
    node.call("generatetoaddress", 1, ARGS["node"]["miner"])
    out["fund_txid"] = fund_txid
    fund_height = node.call("getblockcount")
    out["fund_height"] = fund_height

    window._musig2_menu.trigger()
    ov = pump(lambda: top("OverviewDialog"), 10)[0]
    ov.resize(1000, 360)
    want = f"from block {fund_height + 3}"
    out["overview_recovery"] = bool(pump(lambda: ov.outputs_table.rowCount() == 1 and
                                         ov.outputs_table.item(0, 6).text() == want, 60, every=0.1))
    out["overview_recovery_text"] = ov.outputs_table.item(0, 6).text()
    shot(ov, "overview_recovery_column.png")
    ov.outputs_table.selectRow(0)
    ov.recover_button.click()
    rec = pump(lambda: top("RecoverDialog"), 10)[0]
    rec.resize(760, 420)
    out["recover_rows"] = [[rec.coins.item(r, c).text() for c in range(rec.coins.columnCount())]
                           for r in range(rec.coins.rowCount())]
    rec.recover_button.click()
    pump(lambda: rec.last_error is not None or rec.last_result is not None, 30)
    out["early_status"] = rec.status.text()
    out["early_error"] = type(rec.last_error).__name__ if rec.last_error else None
    shot(rec, "recover_dialog_refused.png")
    mark("refused early")

    node.call("generatetoaddress", 2, ARGS["node"]["miner"])
    tip = node.call("getblockcount")
    pump(lambda: wallet.adb.get_local_height() >= tip, 60, every=0.1)
    rec.refresh()
    rec.last_error = rec.last_result = None
    rec.recover_button.click()
    pump(lambda: rec.last_error is not None or rec.last_result is not None, 30)
    out["late_status"] = rec.status.text()
    out["late_error"] = repr(rec.last_error) if rec.last_error else None
    res = rec.last_result or {}
    out["recovery_txid"] = res.get("txid")
    out["broadcast_txid"] = res.get("broadcast_txid")
    out["recovery_tx"] = res.get("tx")
    shot(rec, "recover_dialog_broadcast.png")
    mark("recovered")
except Exception:
    out["exception"] = traceback.format_exc()
finally:
    try:
        for c in list(plugin.cosigners.values()):
            run(c.stop(), 10)
    except Exception:
        pass
    print("PROBE" + json.dumps(out), flush=True)
    os._exit(0)   # Qt + Electrum threads: no orderly teardown needed in a throwaway child
