"""Offscreen GUI tests with a real Electrum 4.8 Qt main window and our zip plugin.

What they show (screenshots go to docs/screenshots/): the Co-sign (MuSig2) button in the send
tab next to Electrum's Pay button; the signer picker listing co-signers discovered in a real DHT
(two real coordinator nodes advertise themselves); creating the MuSig2 output from the picker puts
its address in Pay to; an incoming signing request opens the approval dialog, which shows the
transaction's real outputs and fee; approving runs both rounds to a valid signature (progress
dialog); the outputs/sessions overview; the settings refuse a bad bootstrap peer.

The probe runs in a child process (Qt and Electrum's plugin registry are process-global) inside
the harness's mount namespace, so Electrum's plugin authorization sees the test key.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import electrum  # noqa: E402,F401  (no skip: a missing Electrum or PyQt6 must fail the run)
import PyQt6.QtWidgets  # noqa: E402,F401

from musig2_plugin.foundation import constants as C  # noqa: E402
from tests.harness.electrum import REPO, ElectrumDaemon, build_plugin_zip  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.electrum, pytest.mark.slow]
SHOTS = Path(REPO) / "docs" / "screenshots"


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qt")
    zip_path = build_plugin_zip(tmp / "dist")
    d = ElectrumDaemon(tmp / "e", plugin_zip=zip_path, name="qt-edge")
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(d.workdir))
    script = Path(__file__).with_name("qt_probe.py")
    res = subprocess.run(d.namespace_argv([sys.executable, str(script), str(d.workdir), str(SHOTS)]),
                         env=env, capture_output=True, text=True, timeout=200)
    lines = [l for l in res.stdout.splitlines() if l.startswith("PROBE")]
    assert lines, (res.returncode, res.stderr[-4000:])
    out = json.loads(lines[-1][len("PROBE"):])
    assert "exception" not in out, out["exception"]
    return out


def test_cosign_button_in_send_tab(probe):
    assert probe["plugin_module"] == "electrum_external_plugins.musig2_plugin.qt"
    assert probe["button_text"] == "Co-sign (MuSig2)..."
    assert probe["button_visible"] and probe["button_next_to_pay"]


def test_signer_picker_lists_discovered_signers_and_fills_pay_to(probe):
    rows = probe["picker_rows"]
    assert sorted(r[0] for r in rows) == ["bob", "carol"]
    assert probe["picker_keys"] == probe["bob_carol_keys"]
    for r in rows:
        assert r[2] == "spend" and r[3] == "10,000–5,000,000" and r[4] == "150 sat" and r[5] == "3"
        assert r[6] == "0/0/0"        # observed by this wallet: nothing yet
    assert probe["payto"] == probe["expected_address"] and probe["payto_valid"]
    assert probe["stored_outputs"] == [probe["expected_address"]]
    # creating the output asks the user to back up its descriptor (text + QR)
    assert probe["backup_dialog"] == [probe["expected_descriptor"]]
    assert "and_v(v:pk(" in probe["expected_descriptor"]


def test_approval_dialog_shows_the_transactions_real_outputs(probe):
    shown = sorted([r[0], int(r[1].replace(" sat", "").replace(",", ""))] for r in probe["approval_rows"])
    assert shown == probe["tx_outputs"]
    assert any("MuSig2 output" in r[2] for r in probe["approval_rows"])
    assert any("yours" in r[2] for r in probe["approval_rows"])
    assert probe["approval_fee"] == "Fee: 1,400 sat"
    assert probe["approve_enabled"] is True


def test_approval_runs_both_rounds_to_a_valid_signature(probe):
    assert probe["final_status"] == "signed", probe.get("final_error")
    assert probe["signed_inputs"] == [0] and probe["sig_valid"] is True
    assert all(label.startswith("✔") for label in probe["progress_labels"][:5])
    assert probe["overview_outputs"] == 1 and probe["overview_sessions"] == 1
    # the wallet's own record of the co-signer it just completed a session with
    bob = [k for k in probe["observed"]]
    assert len(bob) == 1 and probe["observed"][bob[0]] == [1, 0, 0]
    assert bob[0] in probe["bob_carol_keys"]


def test_settings_validate_and_save(probe):
    assert "not host:port" in probe["settings_bad_peer_error"]
    assert probe["settings_still_open"] is True
    # The nickname field: limited by the records' constant; a non-ASCII name over the byte
    # limit is refused with the limit in words, the dialog stays open, nothing is saved.
    assert probe["nick_max_length"] == C.MAX_NICKNAME_BYTES
    assert probe["settings_long_nick_error"].startswith("BadArgument: the nickname is 40 bytes")
    assert f"at most {C.MAX_NICKNAME_BYTES}" in probe["settings_long_nick_error"]
    assert probe["settings_long_nick_open"] is True
    assert probe["settings_long_nick_saved"] is None
    assert "unspecified address" in probe["settings_bad_public_error"]
    assert probe["settings_still_open_public"] is True
    assert probe["settings_saved"] == ["127.0.0.1:4242", "alice", True, "0.0.0.0",
                                       "signer.example.org", 443]
    assert probe["settings_configvars"] == ["127.0.0.1:4242", "alice", True, "0.0.0.0",
                                            "signer.example.org", 443,
                                            "plugins.musig2_plugin.advertise"]
    # how the running node is reached, as the dialog shows it
    assert "regtest: listening on 127.0.0.1:" in probe["reach_text"]
    assert "reached directly at 127.0.0.1:" in probe["reach_text"]
    # with a relay reservation: the relay in use, named as the status command lists it
    key, addr = probe["relay_key"], probe["relay_address"]
    assert probe["status_relays"] == [[*addr.rsplit(":", 1)[:1], int(addr.rsplit(":", 1)[1]),
                                       "relay", key]]
    assert f"reached through relay {key[:16]}…@{addr}" in probe["reach_text_relay"]
    assert "reached directly" not in probe["reach_text_relay"]


def test_screenshots_written(probe):
    for name in probe["screenshots"]:
        assert (SHOTS / name).stat().st_size > 5_000, name
    assert set(probe["screenshots"]) >= {"send_tab_cosign_button.png", "signer_picker.png",
                                         "approval_dialog.png", "progress_dialog.png"}


def test_encrypted_wallet_with_node_enabled_asks_once_and_starts(probe):
    assert probe["password_prompts"] == 1
    assert probe["encrypted_autostart"] is True


def test_switching_the_node_off_in_settings_stops_it(probe):
    assert probe["node_stopped_by_setting"] is True


def test_import_refuses_a_tree_other_than_the_announced_policy(probe):
    text, nothing_stored, count = probe["import_refused"]
    assert text.startswith("Refused: RecoveryPolicyMismatch") and nothing_stored and count == 1
    text, same_address = probe["import_ok"]
    assert text.startswith("Imported ") and "after 144 blocks the funder" in text and same_address


def test_sign_recovery_dialog_reviews_signs_and_completes_a_two_of_three(probe):
    text, enabled = probe["sign_recovery_garbage"]
    assert text.startswith("Refused: MalformedPsbt") and enabled is False
    text, enabled, rows = probe["sign_recovery_review"]
    assert "any 2 of the 3" in text and "Fee: 800 sat" in text and "can sign" in text
    assert enabled is True and rows == 1
    text, can_broadcast, witness_items = probe["sign_recovery_done"]
    assert text.startswith("Complete: transaction") and can_broadcast is True
    assert witness_items == 5     # sig, sig, empty, leaf script, control block


def test_spend_and_fund_from_the_overview(probe):
    assert "whole satoshis" in probe["spend_bad_amount"]
    assert probe["spend_offline"].startswith("Offline:")
    assert probe["fund_payto"] == probe["expected_address"]


def test_a_request_whose_message_differs_is_refused_through_the_dialog(probe):
    """The GUI path of the co-signer review: same refusal as the approve command
    (tests/edge_chain/test_qt_spend_on_chain.py checks the command path on real daemons)."""
    assert probe["bad_msg_differs"] is True
    assert probe["bad_status"] == "refused" and probe["bad_error"].startswith("SighashMismatch")
    assert probe["bad_auto_dialog"] is False
    assert probe["bad_approve_enabled"] is False
    assert "refused" in probe["bad_dialog_error"] and "SighashMismatch" in probe["bad_dialog_error"]
    assert probe["bad_dialog_open"] is True
    # still refused, never approved, no session joined, no approval remembered, no progress dialog
    assert probe["bad_after"] == ["refused", False, 0, False, 0]


def test_a_request_without_an_inputs_amount_is_refused_through_the_dialog(probe):
    assert probe["missing_enabled"] is False
    status, error, shown, still_open, auto_opened, approved, joined, remembered = probe["missing"]
    assert status == "refused" and error.startswith("MissingInputInfo"), error
    assert "refused" in shown and "MissingInputInfo" in shown and still_open is True
    assert (auto_opened, approved, joined, remembered) == (False, False, 0, False)
