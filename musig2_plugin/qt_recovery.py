"""Qt pieces of the recovery path: the policy chooser, the descriptor backup and "Recover".

* ``PolicyBox``: in the signer picker, the creator picks no leaf, "me alone after N
  blocks" or "k of the n after N blocks" (N defaults to RECOVERY_DEFAULT_BLOCKS).
* ``BackupDialog``: shown when an output is created: the descriptor as text and QR code,
  and why it matters (seed + descriptor restore both spend paths).
* ``RecoverDialog``: from the outputs overview: the leaf in words, each coin's height and
  the height from which it can be recovered, and the Recover button; before maturity the
  wallet refuses with the height (the same ``app.recovery`` code as the command).

Kept out of qt_dialogs.py so the cooperative dialogs stay small; figures come from the
wallet's own data (descriptor, coins, heights), never from text a peer wrote.
"""
from __future__ import annotations

from typing import Optional

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                             QPushButton, QSpinBox, QTextEdit, QVBoxLayout, QWidget)

from electrum.i18n import _
from electrum.gui.qt.util import Buttons, CloseButton, WindowModalDialog, WWLabel

from .foundation.constants import (RECOVERY_DEFAULT_BLOCKS, RECOVERY_MAX_BLOCKS,
                                   RECOVERY_MIN_BLOCKS)
from .qt_dialogs import AsyncRunner, fill_table, make_table, sats

NO_LEAF, FUNDER, K_OF_N = 0, 1, 2


def _short_outpoint(outpoint: str) -> str:
    txid, _sep, idx = outpoint.partition(":")
    return f"{txid[:12]}…:{idx}"


class PolicyBox(QWidget):
    """The recovery policy of a new output, as the short text ``create_output`` takes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.kind = QComboBox()
        self.kind.addItems([_("No recovery path (all signatures, always)"),
                            _("I alone, after"), _("k of the n, after")])
        self.kind.setCurrentIndex(FUNDER)
        self.k = QSpinBox()
        self.k.setRange(1, 14)
        self.k.setPrefix("k = ")
        self.blocks = QSpinBox()
        self.blocks.setRange(RECOVERY_MIN_BLOCKS, RECOVERY_MAX_BLOCKS)
        self.blocks.setValue(RECOVERY_DEFAULT_BLOCKS)
        self.blocks.setSuffix(_(" blocks"))
        for w in (QLabel(_("Recovery:")), self.kind, self.k, self.blocks):
            row.addWidget(w)
        self.kind.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.k.setVisible(self.kind.currentIndex() == K_OF_N)
        self.blocks.setEnabled(self.kind.currentIndex() != NO_LEAF)

    def spec(self, n_participants: int) -> Optional[str]:
        kind = self.kind.currentIndex()
        if kind == NO_LEAF:
            return None
        if kind == FUNDER:
            return f"funder:{self.blocks.value()}"
        return f"{self.k.value()}-of-{n_participants}:{self.blocks.value()}"


class BackupDialog(WindowModalDialog):
    """Asks the user to back up a new output's descriptor (text and QR)."""

    def __init__(self, parent, out):
        super().__init__(parent, _("Back up this MuSig2 output"))
        from electrum.gui.qt.qrcodewidget import QRCodeWidget
        self.setMinimumWidth(640)
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_(
            "Write down or print this descriptor and keep it with your seed. Your seed alone "
            "does not know the other participants' keys: with the seed and this text you can "
            "restore the output, spend it with the others, and use its recovery path.")))
        self.policy_text = out.recovery.spec if out.recovery is not None else ""
        if out.recovery is not None:
            vbox.addWidget(WWLabel(_("Recovery path: {}").format(out.recovery.describe())))
            # What the co-signers import it with (they refuse any other tree).
            vbox.addWidget(WWLabel(_("Tell your co-signers this policy with the descriptor: "
                                     "{}").format(self.policy_text)))
        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlainText(out.descriptor)
        self.text.setMaximumHeight(110)
        vbox.addWidget(self.text)
        self.qr = QRCodeWidget(out.descriptor)
        self.qr.setMinimumSize(260, 260)
        vbox.addWidget(self.qr)
        self.confirmed = QCheckBox(_("I have backed up this descriptor"))
        vbox.addWidget(self.confirmed)
        close = CloseButton(self)
        close.setEnabled(False)
        self.confirmed.toggled.connect(close.setEnabled)
        vbox.addLayout(Buttons(close))


class RecoverDialog(WindowModalDialog):
    """"Recover": spend an output's coins through its recovery leaf once the timelock passed."""

    def __init__(self, parent, plugin, wallet, stored):
        super().__init__(parent, _("Recover MuSig2 coins"))
        self.plugin, self.wallet, self.stored = plugin, wallet, stored
        out = stored.output
        self.setMinimumWidth(720)
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_("Output {}").format(out.address())))
        vbox.addWidget(WWLabel(_("Recovery path: {}").format(
            out.recovery.describe() if out.recovery else _("none"))))
        self.coins = make_table([_("coin"), _("amount"), _("confirmed at"),
                             _("recoverable from block"), _("now")])
        vbox.addWidget(self.coins)
        grid = QGridLayout()
        self.dest = QLineEdit(wallet.get_receiving_address())
        self.feerate = QLineEdit("2")
        grid.addWidget(QLabel(_("Send to")), 0, 0)
        grid.addWidget(self.dest, 0, 1)
        grid.addWidget(QLabel(_("Fee rate (sat/vB)")), 1, 0)
        grid.addWidget(self.feerate, 1, 1)
        vbox.addLayout(grid)
        self.status = WWLabel("")
        vbox.addWidget(self.status)
        self.result_text = QTextEdit()
        self.result_text.setReadOnly(True)
        self.result_text.setMaximumHeight(90)
        self.result_text.setVisible(False)
        vbox.addWidget(self.result_text)
        self.recover_button = QPushButton(_("Recover"))
        self.recover_button.clicked.connect(self.recover)
        vbox.addLayout(Buttons(CloseButton(self), self.recover_button))
        self._runner = AsyncRunner()
        self.last_result = None
        self.last_error: Optional[BaseException] = None
        self.refresh()

    def refresh(self) -> None:
        from .app import recovery
        watcher = self.plugin.watcher
        out = self.stored.output
        if watcher is None or out.recovery is None:
            self.status.setText(_("This wallet is offline.") if watcher is None
                                else _("This output has no recovery path."))
            self.recover_button.setEnabled(False)
            return
        tip = int(self.wallet.adb.get_local_height())
        rows = recovery.plan(out, watcher.coins(out), watcher.coin_heights(out), tip)
        fill_table(self.coins, [[_short_outpoint(r["outpoint"]), sats(r["value_sats"]), str(r["height"] or "—"),
                            str(r["recoverable_from_height"] or _("after confirmation")),
                            _("yes") if r["recoverable_now"] else _("not yet")] for r in rows])
        self.plan_rows = rows
        opens = [r["recoverable_from_height"] for r in rows if r["recoverable_from_height"]]
        self.status.setText(_("Chain height {}. Recovery possible from block {}.").format(
            tip, max(opens)) if opens else _("Chain height {}.").format(tip))

    def recover(self) -> None:
        from .app import recovery
        try:
            feerate = float(self.feerate.text())
        except ValueError:
            self.show_error(_("The fee rate must be a number."))
            return
        password = None
        if self.wallet.has_keystore_encryption():
            password = self.parent().password_dialog() if hasattr(self.parent(),
                                                                   "password_dialog") else None
            if password is None:
                return
        self.recover_button.setEnabled(False)
        self.status.setText(_("Building the recovery…"))

        async def go():
            from .wallet_bridge import broadcast, parse_psbt
            result = await recovery.recover(self.plugin, self.wallet, password, self.stored.output.address(),
                                            destination=self.dest.text().strip() or None,
                                            feerate_sat_vb=feerate)
            if result["complete"]:
                from electrum.transaction import tx_from_any
                result["broadcast_txid"] = await broadcast(self.wallet, tx_from_any(result["tx"]))
            else:
                parse_psbt(result["psbt"])   # checked again before it is shown for passing on
            return result
        self._runner = AsyncRunner()
        self._runner.run(go(), self._on_done)

    def _on_done(self, result, exc) -> None:
        self.recover_button.setEnabled(True)
        self.last_result, self.last_error = result, exc
        if exc is not None:
            self.status.setText(_("Refused: {}: {}").format(type(exc).__name__, exc))
            return
        self.result_text.setVisible(True)
        if result["complete"]:
            self.status.setText(_("Recovered: transaction {} broadcast (fee {}).").format(
                result["txid"], sats(result["review"]["fee_sats"])))
            self.result_text.setPlainText(result["tx"])
        else:
            self.status.setText(_("Signed by you. Pass this PSBT to the other signers of the "
                                  "recovery path (recovery_sign)."))
            self.result_text.setPlainText(result["psbt"])


class ImportDialog(WindowModalDialog):
    """A co-signer imports an output's descriptor with the recovery policy it was told about.

    What the descriptor's tree says is shown in words before anything is stored; a tree
    that is not the announced policy (or a tree where none was announced) is refused,
    with the same check as ``create_output descriptor=... recovery=...``.
    """

    def __init__(self, parent, plugin, wallet):
        super().__init__(parent, _("Import a MuSig2 output"))
        self.plugin, self.wallet = plugin, wallet
        self.setMinimumWidth(640)
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_(
            "Paste the descriptor the creator sent you, and the recovery policy they announced "
            "(for example funder:<their key>:4032 or 2-of-3:4032; empty for none). A descriptor "
            "whose recovery path differs from the announced one is refused.")))
        self.descriptor = QTextEdit()
        self.descriptor.setMaximumHeight(110)
        vbox.addWidget(self.descriptor)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Announced recovery policy")))
        self.announced = QLineEdit()
        row.addWidget(self.announced)
        vbox.addLayout(row)
        self.status = WWLabel("")
        vbox.addWidget(self.status)
        self.import_button = QPushButton(_("Import"))
        self.import_button.clicked.connect(self.do_import)
        vbox.addLayout(Buttons(CloseButton(self), self.import_button))
        self.stored = None

    def do_import(self) -> None:
        from .wallet_bridge import import_output
        me = self.plugin.cached_participant_key(self.wallet)
        if me is None:
            self.status.setText(_("Start the co-signing node first (it derives your key)."))
            return
        try:
            out = import_output(self.descriptor.toPlainText().strip(), me.pubkey,
                                self.announced.text().strip() or None)
        except Exception as exc:
            self.status.setText(_("Refused: {}: {}").format(type(exc).__name__, exc))
            return
        self.stored = self.plugin.vaults(self.wallet).add(out, _("imported"))
        self.wallet.save_db()
        self.plugin.watch_output(out)
        self.status.setText(_("Imported {}. Recovery path: {}").format(
            out.address(), out.recovery.describe() if out.recovery else _("none")))


class SignRecoveryDialog(WindowModalDialog):
    """A k-of-n signer's side of a recovery: paste the PSBT, review it, add our signature.

    The review (outputs, fee, the leaf, whether it takes our key) is computed from the PSBT
    before anything is signed; when the k-th signature is in, the transaction is finalized
    and can be broadcast from here.
    """

    def __init__(self, parent, plugin, wallet):
        super().__init__(parent, _("Sign a recovery"))
        self.plugin, self.wallet = plugin, wallet
        self.setMinimumWidth(680)
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_("Paste the recovery PSBT another signer passed to you.")))
        self.psbt = QTextEdit()
        self.psbt.setMaximumHeight(110)
        vbox.addWidget(self.psbt)
        self.review_label = WWLabel("")
        vbox.addWidget(self.review_label)
        self.outputs = make_table([_("address"), _("amount")])
        vbox.addWidget(self.outputs)
        self.status = WWLabel("")
        vbox.addWidget(self.status)
        self.result_text = QTextEdit()
        self.result_text.setReadOnly(True)
        self.result_text.setMaximumHeight(90)
        vbox.addWidget(self.result_text)
        self.review_button = QPushButton(_("Review"))
        self.review_button.clicked.connect(self.review)
        self.sign_button = QPushButton(_("Sign"))
        self.sign_button.setEnabled(False)
        self.sign_button.clicked.connect(self.sign)
        self.broadcast_button = QPushButton(_("Broadcast"))
        self.broadcast_button.setEnabled(False)
        self.broadcast_button.clicked.connect(self.broadcast)
        vbox.addLayout(Buttons(CloseButton(self), self.review_button, self.sign_button,
                               self.broadcast_button))
        self.result = None
        self._runner = AsyncRunner()

    def _me(self):
        key = self.plugin.cached_participant_key(self.wallet)
        if key is None:
            raise ValueError(_("Start the co-signing node first (it derives your key)."))
        return key.pubkey

    def review(self) -> None:
        from .wallet_bridge import parse_psbt, review_recovery
        self.sign_button.setEnabled(False)
        try:
            rev = review_recovery(parse_psbt(self.psbt.toPlainText()), self._me())
        except Exception as exc:
            self.status.setText(_("Refused: {}: {}").format(type(exc).__name__, exc))
            return
        ours = any(i["ours"] for i in rev["inputs"])
        self.review_label.setText(_("Recovery path: {}. Fee: {}. {}").format(
            "; ".join(sorted({i["recovery"] for i in rev["inputs"]})), sats(rev["fee_sats"]),
            _("Your key can sign it.") if ours else _("Your key is not in its recovery path.")))
        fill_table(self.outputs, [[o["address"] or o["script"], sats(o["value_sats"])]
                             for o in rev["outputs"]])
        self.sign_button.setEnabled(ours)
        self.status.setText("")

    def sign(self) -> None:
        from .app import recovery
        from .wallet_bridge import parse_psbt
        password = None
        if self.wallet.has_keystore_encryption():
            ask = getattr(self.parent(), "password_dialog", None)
            password = ask() if ask else None
            if password is None:
                return
        try:
            self.result = recovery.sign(self.plugin, self.wallet, password,
                                        parse_psbt(self.psbt.toPlainText()))
        except Exception as exc:
            self.status.setText(_("Refused: {}: {}").format(type(exc).__name__, exc))
            return
        self.sign_button.setEnabled(False)
        if self.result["complete"]:
            self.status.setText(_("Complete: transaction {}.").format(self.result["txid"]))
            self.result_text.setPlainText(self.result["tx"])
            self.broadcast_button.setEnabled(True)
        else:
            self.status.setText(_("Signed. Pass this PSBT on to the next signer."))
            self.result_text.setPlainText(self.result["psbt"])

    def broadcast(self) -> None:
        from electrum.transaction import tx_from_any
        from .wallet_bridge import broadcast
        self.broadcast_button.setEnabled(False)

        def done(txid, exc):
            if exc is not None:
                self.status.setText(_("Broadcast failed: {}: {}").format(type(exc).__name__, exc))
                self.broadcast_button.setEnabled(True)
            else:
                self.status.setText(_("Broadcast {}.").format(txid))
        self._runner = AsyncRunner()
        self._runner.run(broadcast(self.wallet, tx_from_any(self.result["tx"])), done)
