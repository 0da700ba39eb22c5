"""Child process of tests/edge_gui/test_qt_edge.py: a real Electrum Qt main window, offscreen,
with our zip plugin loaded by Electrum's own plugin machinery. Other co-signers are real
coordinator nodes (DHT + aiorpcx on 127.0.0.1) in this process. Prints one PROBE{json} line.

argv: <electrum dir> <screenshot dir>
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

constants.BitcoinRegtest.set_as_network()
loop, stop_loop, loop_thread = util.create_and_start_event_loop()
workdir, shots = sys.argv[1], sys.argv[2]
config = SimpleConfig({"electrum_path": workdir, "regtest": True, "offline": True})
config.DONT_SHOW_TESTNET_WARNING = True     # modal message boxes would block offscreen
config.AUTOMATIC_CENTRALIZED_UPDATE_CHECKS = False
import faulthandler  # noqa: E402
faulthandler.dump_traceback_later(int(os.environ.get("PROBE_HANG_S", "150")), exit=True)   # a hang shows where, then ends the child

from electrum.daemon import Daemon  # noqa: E402
from electrum.gui.qt import ElectrumGui  # noqa: E402
from electrum.plugin import Plugins  # noqa: E402
from electrum.wallet import create_new_wallet  # noqa: E402

out = {}


def run(coro, timeout=30):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def pump(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    return None


def shot(widget, name):
    QApplication.processEvents()
    widget.grab().save(os.path.join(shots, name))
    out.setdefault("screenshots", []).append(name)


def top(cls_name):
    return [w for w in QApplication.topLevelWidgets()
            if type(w).__name__ == cls_name and w.isVisible()]


daemon = Daemon(config, listen_jsonrpc=False)
plugins = Plugins(config, "qt")
gui = ElectrumGui(config=config, daemon=daemon, plugins=plugins)
others = []
try:
    plugin = plugins.get("musig2_plugin")
    out["plugin_module"] = type(plugin).__module__
    pkg = sys.modules[type(plugin).__module__.rsplit(".", 1)[0]]
    from importlib import import_module
    coord = import_module(pkg.__name__ + ".coordinator")
    records = import_module(pkg.__name__ + ".records")
    bridge = import_module(pkg.__name__ + ".wallet_bridge")
    cosign = import_module(pkg.__name__ + ".app.cosign")

    path = os.path.join(workdir, "wallets", "alice")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    create_new_wallet(path=path, config=config, password=None, encrypt_file=False)
    wallet = daemon.load_wallet(path, None)
    window = gui._create_window_for_wallet(wallet)
    window.resize(1100, 720)
    window.show()
    window.tabs.setCurrentWidget(window.send_tab)
    QApplication.processEvents()
    button = window.send_tab.findChild(QPushButton, "musig2_cosign_button")
    out["button_text"] = button.text() if button else None
    out["button_visible"] = bool(button and button.isVisible())
    out["button_next_to_pay"] = bool(button and button.parent() is window.send_tab.send_button.parent())
    shot(window, "send_tab_cosign_button.png")

    # Two other co-signers: real coordinator nodes with a DHT, advertising themselves.
    async def start_other(nick, seed_addr):
        node = coord.Musig2Node(os.urandom(32),
                                chain=import_module(pkg.__name__ + ".foundation.chain").REGTEST)
        await node.start("127.0.0.1", 0, dht=True, bootstrap=[seed_addr] if seed_addr else [])
        await node.advertise_signer(tx_types=(records.TxType.SPEND,), min_amount_sat=10_000,
                                    max_amount_sat=5_000_000, nickname=nick,
                                    fee_per_signature_sat=150, reputation=3)
        return node
    bob = run(start_other("bob", None))
    others.append(bob)
    carol = run(start_other("carol", bob.dht_address))
    others.append(carol)
    run(plugin.start_node(wallet, None, bootstrap=[bob.dht_address]))
    me = plugin.cached_participant_key(wallet).pubkey

    # The send-tab button opens the signer picker, fed by DHT discovery.
    button.click()
    picker = pump(lambda: [d for d in top("SignerPickerDialog") if d.table.rowCount() >= 2], 30)
    picker = picker[0] if picker else None
    out["picker_rows"] = []
    if picker is not None:
        for r in range(picker.table.rowCount()):
            out["picker_rows"].append([picker.table.item(r, c).text()
                                       for c in range(picker.table.columnCount())])
        out["picker_keys"] = sorted(ad.owner.hex() for ad in picker.ads)
        picker.resize(900, 420)
        shot(picker, "signer_picker.png")
        picker.table.selectAll()
        picker.create_button.click()
        QApplication.processEvents()
        pi = window.send_tab.payto_e.payment_identifier
        out["payto"] = pi.text if pi is not None else None
        out["payto_valid"] = bool(pi is not None and pi.is_valid())
        # the picker's default policy: a recovery leaf, me alone after the default timelock
        made = bridge.create_recovery_output(me, [bob.pubkey, carol.pubkey], "funder")
        out["backup_dialog"] = [d.text.toPlainText() for d in top("BackupDialog")]
        out["expected_descriptor"] = made.descriptor
        out["expected_address"] = made.address()
        out["stored_outputs"] = [s.output.address() for s in plugin.vaults(wallet).all()]
        shot(window, "send_tab_pay_to_musig2.png")
    out["bob_carol_keys"] = sorted([bob.pubkey.hex(), carol.pubkey.hex()])

    # An incoming request (bob asks alice to co-sign a spend of a bob+alice output): the
    # listener opens the approval dialog, computed from the transaction.
    pair = bridge.MusigOutput.from_pubkeys([me, bob.pubkey])
    coin = bridge.MusigCoin(hashlib.sha256(b"gui coin").hexdigest(), 1, 250_000, pair)
    dest = wallet.get_receiving_address()
    tx = bridge.build_spend([coin], [(dest, 120_000), (pair.address(), 128_600)], fee_sats=1_400,
                            change_musig=pair)
    msg = bridge.keypath_sighash(tx, 0)
    out["tx_outputs"] = sorted([[o.address, o.value] for o in tx.outputs()])

    async def bob_asks():
        # bob reaches alice's node directly (as after discovering her advertisement)
        bob.add_peer(me, plugin.cosigners[id(wallet)].node.endpoint)
        record = await bob.announce_signing_request(
            [me, bob.pubkey], [msg], app_data=cosign.encode_app_data(tx, [0]))
        await bob.join_signing_request(record, auto=True)
        return record
    record = run(bob_asks())
    approval = pump(lambda: top("ApprovalDialog"), 20)
    if approval:
        d = approval[0]
        rows = []
        for r in range(d.outputs_table.rowCount()):
            rows.append([d.outputs_table.item(r, c).text() for c in range(d.outputs_table.columnCount())])
        out["approval_rows"] = rows
        out["approval_fee"] = d.fee_label.text()
        out["approve_enabled"] = d.approve_button.isEnabled()
        d.resize(820, 460)
        shot(d, "approval_dialog.png")
        d.approve_button.click()
        prog = pump(lambda: top("ProgressDialog"), 10)
        state = d.state
        pump(lambda: state.status == "signed", 30)
        out["final_status"] = state.status
        out["final_error"] = state.error
        out["signed_inputs"] = sorted(state.signatures)
        pump(lambda: plugin.observed_reputation(wallet), 5)
        out["observed"] = plugin.observed_reputation(wallet)
        if state.signatures:
            out["sig_valid"] = bridge.spend.crypto.schnorr_verify(pair.xonly_output_key, msg,
                                                                   state.signatures[0])
        if prog:
            prog[0].refresh()
            out["progress_labels"] = [prog[0].labels[k].text() for k, _t in prog[0].STEPS]
            prog[0].resize(640, 300)
            shot(prog[0], "progress_dialog.png")
    ov = plugin.open_overview(window)
    ov.resize(900, 360)
    # A co-signer's import of a recovery output (bob created it, alice imports it): a tree other
    # than the announced policy is refused and nothing is stored; the announced one is imported.
    bobs = bridge.create_recovery_output(bob.pubkey, [me], "funder:144")
    imp = ov.import_descriptor()
    imp.descriptor.setPlainText(bobs.descriptor)
    imp.announced.setText(f"funder:{bob.pubkey.hex()}:1")
    imp.do_import()
    out["import_refused"] = [imp.status.text(), imp.stored is None,
                             len(plugin.vaults(wallet).all())]
    imp.announced.setText(f"funder:{bob.pubkey.hex()}:144")
    imp.do_import()
    out["import_ok"] = [imp.status.text(), imp.stored is not None and
                        imp.stored.output.address() == bobs.address()]
    imp.resize(660, 320)
    shot(imp, "import_descriptor.png")
    imp.close()
    plugin.vaults(wallet).remove(bobs.address())
    # A 2-of-3 recovery PSBT that a third signer already signed: alice reviews and signs it in
    # the dialog; with 2 of 2 required signatures it is complete (broadcast needs the chain).
    third = hashlib.sha256(b"gui third signer").digest()
    trio = [me, bob.pubkey, bridge.spend.crypto.plain_pubkey(third)]
    k2 = bridge.create_recovery_output(me, trio[1:], "2-of-3:6")
    rtx = bridge.build_recovery_spend(
        [bridge.MusigCoin(hashlib.sha256(b"gui rec coin").hexdigest(), 0, 80_000, k2)],
        wallet.get_receiving_address(), fee_sats=800)
    bridge.sign_recovery(rtx, third)
    sr = ov.sign_recovery()
    sr.psbt.setPlainText("not a psbt")
    sr.review()
    out["sign_recovery_garbage"] = [sr.status.text(), sr.sign_button.isEnabled()]
    sr.psbt.setPlainText(bridge.psbt_base64(rtx))
    sr.review()
    out["sign_recovery_review"] = [sr.review_label.text(), sr.sign_button.isEnabled(),
                                   sr.outputs.rowCount()]
    sr.sign()
    from electrum.transaction import tx_from_any
    out["sign_recovery_done"] = [sr.status.text(), sr.broadcast_button.isEnabled(),
                                 len(tx_from_any(sr.result["tx"]).inputs()[0]
                                     .witness_elements()) if sr.result else None]
    sr.resize(700, 460)
    shot(sr, "sign_recovery_dialog.png")
    sr.close()
    out["overview_outputs"] = ov.outputs_table.rowCount()
    out["overview_sessions"] = ov.sessions_table.rowCount()
    shot(ov, "outputs_and_sessions.png")
    # Spend from the stored output: the dialog builds the request through the plugin; offline,
    # it must say why it cannot (no server to list the coins), without crashing.
    ov.outputs_table.selectRow(0)
    spend = ov.spend_selected()
    spend.payto_edit.setText(wallet.get_receiving_address())
    spend.amount_edit.setText("abc")
    spend.request()
    out["spend_bad_amount"] = spend.error_label.text()
    spend.amount_edit.setText("50000")
    spend.request()
    pump(lambda: spend.error_label.text().startswith("Offline"), 10)
    out["spend_offline"] = spend.error_label.text()
    spend.resize(640, 220)
    shot(spend, "spend_dialog.png")
    spend.reject()
    window.send_tab.payto_e.do_clear()
    ov.outputs_table.selectRow(0)
    ov.fund_selected()
    pi = window.send_tab.payto_e.payment_identifier
    out["fund_payto"] = pi.text if pi is not None else None
    # A request whose message is not its transaction's sighash (bob lies about what is signed):
    # the listener opens no dialog; opened by hand, the dialog says why and its Approve (forced
    # past the disabled button) goes through the same approve() as the command and is refused.
    bad_msg = bytes([msg[0] ^ 1]) + msg[1:]
    coin2 = bridge.MusigCoin(hashlib.sha256(b"gui coin 2").hexdigest(), 0, 90_000, pair)
    tx2 = bridge.build_spend([coin2], [(dest, 60_000), (pair.address(), 28_600)], fee_sats=1_400,
                             change_musig=pair)
    out["bad_msg_differs"] = bad_msg != bridge.keypath_sighash(tx2, 0)
    bad_record = run(bob.announce_signing_request([me, bob.pubkey], [bad_msg],
                                                  app_data=cosign.encode_app_data(tx2, [0])))
    svc = plugin.cosigners[id(wallet)]
    bad_key = coord.request_key(bad_record)
    bad_state = pump(lambda: svc.requests.get(bad_key), 20)
    out["bad_status"] = bad_state.status if bad_state else None
    out["bad_error"] = bad_state.error if bad_state else None
    pump(lambda: False, 0.5)        # give the listener its chance to (wrongly) open a dialog
    out["bad_auto_dialog"] = any(d.state is bad_state for d in top("ApprovalDialog"))
    bd = plugin.open_approval(window, bad_state)
    out["bad_approve_enabled"] = bd.approve_button.isEnabled()
    bd.accept()
    pump(lambda: bd.error_label.text().startswith("Not approved"), 10)
    out["bad_dialog_error"] = bd.error_label.text()
    out["bad_dialog_open"] = bd.isVisible()
    pump(lambda: False, 0.3)
    out["bad_after"] = [bad_state.status, bool(bad_state.approved), len(bad_state.session_ids),
                        bad_key.hex() in svc.approvals,
                        len([p for p in top("ProgressDialog") if p.state is bad_state])]
    bd.resize(820, 300)
    shot(bd, "approval_dialog_refused.png")
    bd.reject()
    # The same through the dialog for a PSBT lacking an input's amount and script.
    coins3 = [bridge.MusigCoin(hashlib.sha256(b"gui coin 3/%d" % i).hexdigest(), i, v, pair)
              for i, v in enumerate((70_000, 30_000))]
    tx3 = bridge.build_spend(coins3, [(dest, 98_000)], fee_sats=2_000)
    msg3 = bridge.keypath_sighash(tx3, 0)
    stripped = bridge.parse_psbt(bridge.psbt_base64(tx3))
    stripped.inputs()[1]._witness_utxo = None
    stripped = bridge.parse_psbt(bridge.psbt_base64(stripped))
    rec3 = run(bob.announce_signing_request([me, bob.pubkey], [msg3],
                                            app_data=cosign.encode_app_data(stripped, [0])))
    key3 = coord.request_key(rec3)
    st3 = pump(lambda: svc.requests.get(key3), 20)
    pump(lambda: False, 0.5)
    md = plugin.open_approval(window, st3)
    out["missing_enabled"] = md.approve_button.isEnabled()
    md.accept()
    pump(lambda: md.error_label.text().startswith("Not approved"), 10)
    out["missing"] = [st3.status, st3.error, md.error_label.text(), md.isVisible(),
                      any(d.state is st3 for d in top("ApprovalDialog") if d is not md),
                      bool(st3.approved), len(st3.session_ids), key3.hex() in svc.approvals]
    md.reject()
    sd = import_module(type(plugin).__module__).SettingsDialog(window, plugin)
    sd.bootstrap_edit.setText("not a peer")
    sd.accept()
    out["settings_bad_peer_error"] = sd.error_label.text()
    out["settings_still_open"] = sd.result() == 0
    sd.bootstrap_edit.setText("127.0.0.1:4242")
    out["nick_max_length"] = sd.nick_edit.maxLength()
    sd.nick_edit.setText("\u00e9" * 20)          # 20 characters, 40 UTF-8 bytes: over the limit
    sd.accept()
    out["settings_long_nick_error"] = sd.error_label.text()
    out["settings_long_nick_open"] = sd.result() == 0
    out["settings_long_nick_saved"] = config.get("plugins.musig2_plugin.ad_nickname")
    sd.public_host_edit.setText("0.0.0.0")
    sd.accept()
    out["settings_bad_public_error"] = sd.error_label.text()
    out["settings_still_open_public"] = sd.result() == 0
    sd.public_host_edit.setText("signer.example.org")
    sd.public_port_spin.setValue(443)
    sd.listen_all_checkbox.setChecked(True)
    out["reach_text"] = sd.reach_label.text()
    # The node keeps a reservation at a relay (bob relays, a real relay service on loopback,
    # publishable on regtest): the dialog names the relay in use, as the status command does.
    bob.enable_relay()
    run(svc.node.use_relays([records.Endpoint(bob.endpoint.host, bob.endpoint.port,
                                              records.Reach.RELAY, bob.pubkey)]))
    sd.refresh_state()
    out["reach_text_relay"] = sd.reach_label.text()
    out["relay_key"] = bob.pubkey.hex()
    out["relay_address"] = "{}:{}".format(bob.endpoint.host, bob.endpoint.port)
    out["status_relays"] = svc.status()["reach"]["relays"]
    sd.nick_edit.setText("alice")
    sd.advertise_checkbox.setChecked(True)
    shot(sd, "settings_dialog.png")
    sd.accept()
    out["settings_saved"] = [config.get("plugins.musig2_plugin.bootstrap"),
                             config.get("plugins.musig2_plugin.ad_nickname"),
                             config.get("plugins.musig2_plugin.advertise"),
                             config.get("plugins.musig2_plugin.listen_host"),
                             config.get("plugins.musig2_plugin.public_host"),
                             config.get("plugins.musig2_plugin.public_port")]
    # the same values through the ConfigVars the zip-loaded plugin declared (settings.py)
    out["settings_configvars"] = [config.MUSIG2_BOOTSTRAP, config.MUSIG2_AD_NICKNAME,
                                  config.MUSIG2_ADVERTISE, config.MUSIG2_LISTEN_HOST,
                                  config.MUSIG2_PUBLIC_HOST, config.MUSIG2_PUBLIC_PORT,
                                  type(config).MUSIG2_ADVERTISE.key()]
    # An encrypted wallet opened with the node enabled: the plugin asks for the password once
    # (the user's typing is stood in for by answering the prompt) and the node starts.
    from electrum.gui.qt.main_window import ElectrumWindow
    prompts = []
    ElectrumWindow.password_dialog = lambda self, msg=None, parent=None: prompts.append(msg) or "pw"
    plugin.set_node_enabled(True)
    path2 = os.path.join(workdir, "wallets", "dave")
    create_new_wallet(path=path2, config=config, password="pw", encrypt_file=False)
    wallet2 = daemon.load_wallet(path2, "pw")
    window2 = gui._create_window_for_wallet(wallet2)
    started = pump(lambda: (c := plugin.cosigners.get(id(wallet2))) is not None and c.is_running(), 20)
    out["encrypted_autostart"] = bool(started)
    out["password_prompts"] = len(prompts)
    sd2 = import_module(type(plugin).__module__).SettingsDialog(window2, plugin)
    sd2.node_checkbox.setChecked(False)
    sd2.accept()
    out["node_stopped_by_setting"] = bool(pump(lambda: not plugin.is_node_running(), 20))
except Exception:
    out["exception"] = traceback.format_exc()
finally:
    for n in others:
        try:
            run(n.stop(), 10)
        except Exception:
            pass
    try:
        for c in list(plugin.cosigners.values()):
            run(c.stop(), 10)
    except Exception:
        pass
    print("PROBE" + json.dumps(out), flush=True)
    os._exit(0)   # Qt + Electrum threads: no orderly teardown needed in a throwaway child
