"""Child process of tests/edge_chain/test_qt_spend_on_chain.py: alice's real Electrum Qt main
window (offscreen, zip plugin loaded by Electrum's plugin machinery) on the regtest chain, with
bob and carol as real Electrum daemons that approve through plugin commands (JSON-RPC).

Spends a MuSig2 output from the GUI: Tools menu -> outputs/sessions overview -> Spend -> the
spend dialog's Request button -> bob and carol find, review and approve (commands) -> the
progress dialog follows join, round 1, round 2, signed, broadcast. Then the command path of the
co-signer review: alice's node sends bob and carol a request whose message is not its
transaction's sighash, which they refuse. Prints one PROBE{json} line; the parent test mines and
checks the spend on the node.

argv: <json file with: workdir, shots, server, node {port, user, password, miner}, bootstrap,
       cosigners [{name, datadir, wallet_path, pubkey}]>
"""
import asyncio
import hashlib
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

    # The MuSig2 output with the co-signers found in the DHT (send tab button -> picker).
    window.tabs.setCurrentWidget(window.send_tab)
    window.send_tab.findChild(QPushButton, "musig2_cosign_button").click()
    picker = pump(lambda: [d for d in top("SignerPickerDialog") if d.table.rowCount() >= 2], 60)
    picker = picker[0]
    out["picker_keys"] = sorted(ad.owner.hex() for ad in picker.ads)
    picker.table.selectAll()
    picker.create_button.click()
    stored = plugin.vaults(wallet).all()
    out["outputs"] = [s.output.address() for s in stored]
    address = stored[0].output.address()
    # the picker's default policy: a recovery leaf (me alone after the default timelock); the
    # spend below is the key path, tweaked with its merkle root
    expected = bridge.create_recovery_output(me, [bytes.fromhex(c.pubkey) for c in cosigners],
                                             "funder")
    out["expected_address"] = expected.address()
    window.send_tab.payto_e.do_clear()
    mark("output created")

    # Funding: the node pays the output (0.3 BTC), one block.
    fund_txid = node.call("sendtoaddress", address, "0.3", wallet="miner")
    node.call("generatetoaddress", 1, ARGS["node"]["miner"])
    out["fund_txid"] = fund_txid

    # Tools menu -> outputs and sessions; the balance arrives through the wallet's server.
    window._musig2_menu.trigger()
    ov = pump(lambda: top("OverviewDialog"), 10)[0]
    ov.resize(900, 360)
    out["overview_confirmed"] = bool(pump(lambda: ov.outputs_table.rowCount() == 1 and
                                          ov.outputs_table.item(0, 3).text() == "30,000,000 sat", 60,
                                          every=0.1))
    mark("funded")
    ov.outputs_table.selectRow(0)
    ov.spend_button.click()
    spend = pump(lambda: top("SpendDialog"), 10)[0]
    payee = cosigners[0].rpc.call("getunusedaddress", wallet_path=cosigners[0].wallet_path)
    pay_sats = 20_000_000
    out["payee"], out["pay_sats"] = payee, pay_sats
    spend.payto_edit.setText(payee)
    spend.amount_edit.setText(f"{pay_sats:,}")
    spend.feerate_edit.setText("2")
    spend.resize(640, 220)
    shot(spend, "spend_dialog_on_chain.png")
    spend.request_button.click()
    mark("request clicked")
    prog = pump(lambda: [p for p in top("ProgressDialog") if p.state.role == "creator"], 60)
    out["spend_error"] = spend.error_label.text()
    prog = prog[0]
    state = prog.state
    rid = state.key.hex()
    out["request_id"], out["txid"] = rid, state.txid
    out["progress_at_request"] = [prog.labels[k].text() for k, _t in prog.STEPS]
    mark("progress dialog shown")

    # The co-signers find the request through their plugin commands, review it and approve.
    out["reviews"] = {}
    for c in cosigners:
        got = pump(lambda: c.request(rid), 60, every=0.1)
        out["reviews"][c.name] = got
        out.setdefault("approved", {})[c.name] = c.cmd("approve", request_id=rid)["status"]
    mark("approved")
    pump(lambda: state.status in ("broadcast", "failed"), 60)
    mark("broadcast")
    prog.refresh()
    out["final_status"], out["final_error"] = state.status, state.error
    out["broadcast_txid"] = state.broadcast_txid
    out["broadcasts"] = state.broadcasts
    out["phases"] = {k: round(v - state.created, 3) for k, v in state.phases.items()}
    out["progress_labels"] = [prog.labels[k].text() for k, _t in prog.STEPS]
    out["cancel_enabled_after"] = prog.cancel_button.isEnabled()
    out["progress_tx_label"] = prog.tx_label.text()
    prog.resize(640, 300)
    shot(prog, "progress_dialog_on_chain.png")
    ov.refresh()
    out["sessions_rows"] = [[ov.sessions_table.item(r, c).text() for c in range(3)]
                            for r in range(ov.sessions_table.rowCount())]
    ov.close()

    # The command path of the co-signer review, refused by bob's and carol's plugins: a request
    # whose message is not its transaction's sighash (alice's node lies), and one whose PSBT
    # lacks an input's amount and script (BIP-341 commits to all of them).
    coins = [bridge.MusigCoin(hashlib.sha256(b"chain gui bad %d" % i).hexdigest(), i, v, expected)
             for i, v in enumerate((90_000, 40_000))]
    tx_bad = bridge.build_spend(coins[:1], [(payee, 60_000), (expected.address(), 28_600)],
                                fee_sats=1_400, change_musig=expected)
    good = bridge.keypath_sighash(tx_bad, 0)
    tx_two = bridge.build_spend(coins, [(payee, 128_000)], fee_sats=2_000)
    two_msgs = bridge.sighashes(tx_two)
    stripped = bridge.parse_psbt(bridge.psbt_base64(tx_two))
    stripped.inputs()[1]._witness_utxo = None
    stripped = bridge.parse_psbt(bridge.psbt_base64(stripped))
    node_ = plugin.cosigners[id(wallet)].node
    keys = sorted([me] + [bytes.fromhex(c.pubkey) for c in cosigners])
    cases = {"message_differs": ([bytes([good[0] ^ 1]) + good[1:]], tx_bad),
             "missing_amount": ([two_msgs[0]], stripped)}
    out["bad"] = {}
    for case, (msgs, tx) in cases.items():
        record = run(node_.announce_signing_request(keys, msgs,
                                                    app_data=cosign.encode_app_data(tx, [0])))
        bad_rid = coord.request_key(record).hex()
        for c in cosigners:
            seen = pump(lambda: c.request(bad_rid), 30, every=0.1)
            entry = {"status": seen["status"] if seen else None,
                     "error": seen["error"] if seen else None}
            try:
                c.cmd("approve", request_id=bad_rid)
                entry["approve"] = "accepted"
            except Exception as exc:          # ElectrumRPCError: the user-facing message
                entry["approve"] = getattr(exc, "message", str(exc))
            after = c.request(bad_rid)
            entry["after"] = [after["status"], after["session_ids"]]
            out["bad"][f"{case}:{c.name}"] = entry
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
