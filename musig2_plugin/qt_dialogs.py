"""Qt dialogs of the plugin: signer picker, request approval, progress, outputs and sessions.

Every figure shown for a request (outputs, amounts, fee, inputs, who asks) comes from the
transaction the co-signer reviewed (``RequestState.review``), never from free text a peer wrote.
Network work runs on Electrum's asyncio loop; results come back to the GUI thread via signals.
Strings go through Electrum's ``_()``.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Optional

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QGridLayout, QHBoxLayout, QHeaderView,
                             QLabel, QLineEdit, QPushButton, QTableWidget, QTableWidgetItem,
                             QTabWidget, QVBoxLayout)

from electrum.i18n import _
from electrum.gui.qt.util import Buttons, CloseButton, WindowModalDialog, WWLabel
from electrum.util import get_asyncio_loop

from .app import RequestEvent, RequestStatus, find_signers, user_message
from .foundation.errors import Musig2Error

if TYPE_CHECKING:
    from .app import RequestState


def short_key(key_hex: str) -> str:
    return f"{key_hex[:10]}…{key_hex[-6:]}" if len(key_hex) > 20 else key_hex


def sats(value: Optional[int]) -> str:
    return "—" if value is None else f"{value:,} sat"


class AsyncRunner(QObject):
    """Runs a coroutine on Electrum's loop and delivers (result, error) on the GUI thread."""
    finished = pyqtSignal(object, object)

    def run(self, coro, on_done: Callable[[Any, Optional[BaseException]], None]) -> None:
        self.finished.connect(on_done)
        fut = asyncio.run_coroutine_threadsafe(coro, get_asyncio_loop())

        def done(f):
            exc = f.exception()
            self.finished.emit(None if exc else f.result(), exc)
        fut.add_done_callback(done)


def make_table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def fill_table(t: QTableWidget, rows: list[list[str]]) -> None:
    t.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            t.setItem(r, c, QTableWidgetItem(str(text)))


# --------------------------------------------------------------------------------------------
class SignerPickerDialog(WindowModalDialog):
    """Co-signers found in the DHT; pick some and create the MuSig2 output with them."""

    # "claimed" columns are the signer's own words; "checked" ones come from this wallet
    COLUMNS = ["nickname", "key", "types", "range", "fee", "reputation (claimed by signer)",
               "sessions with you (checked: signed/invalid/timeout)"]

    def __init__(self, parent, plugin, wallet, *, on_created: Callable[[Any], None] | None = None):
        super().__init__(parent, _("Co-sign (MuSig2): choose co-signers"))
        self.plugin, self.wallet, self.on_created = plugin, wallet, on_created
        self.ads: list = []
        self.created = None
        self.setMinimumWidth(760)
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_(
            "These signers advertised themselves in the peer-to-peer directory. Each row was "
            "signed by the signer's key. Pick the co-signers of a new MuSig2 output: its address "
            "belongs to all of you together, and spending from it needs every signature.")))
        filters = QHBoxLayout()
        self.type_combo = QComboBox()
        self.type_combo.addItems(["spend", "swap", "coinjoin", "custody"])
        self.amount_edit = QLineEdit()
        self.amount_edit.setPlaceholderText(_("amount (sat)"))
        self.rep_edit = QLineEdit()
        self.rep_edit.setPlaceholderText(_("min. reputation"))
        self.refresh_button = QPushButton(_("Search"))
        self.refresh_button.clicked.connect(self.refresh)
        for w in (QLabel(_("Type")), self.type_combo, QLabel(_("Amount")), self.amount_edit,
                  QLabel(_("Reputation")), self.rep_edit, self.refresh_button):
            filters.addWidget(w)
        vbox.addLayout(filters)
        self.table = make_table([_(c) for c in self.COLUMNS])
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        vbox.addWidget(self.table)
        from .qt_recovery import PolicyBox
        self.policy = PolicyBox(self)        # the way out: recovery leaf (docs/recovery.md)
        vbox.addWidget(self.policy)
        self.status = QLabel("")
        vbox.addWidget(self.status)
        self.create_button = QPushButton(_("Create MuSig2 output"))
        self.create_button.clicked.connect(self.create_output)
        vbox.addLayout(Buttons(CloseButton(self), self.create_button))
        self._runner = AsyncRunner()

    def _filters(self) -> tuple[str, Optional[int], Optional[int]]:
        def num(edit):
            text = edit.text().strip().replace(",", "")
            return int(text) if text.isdigit() else None
        return self.type_combo.currentText(), num(self.amount_edit), num(self.rep_edit)

    def refresh(self) -> None:
        kind, amount, rep = self._filters()
        try:
            cosigner = self.plugin.cosigner(self.wallet)
        except Musig2Error as exc:
            self.status.setText(user_message(exc))
            return
        observed = self.plugin.observed_reputation(self.wallet)

        def history(owner: bytes) -> tuple[int, int] | None:   # ranks by what we saw ourselves
            counts = observed.get(owner.hex())     # [signed, invalid, timeout]
            return None if not counts else (counts[0], sum(counts[1:]))
        self.status.setText(_("Searching…"))
        self.refresh_button.setEnabled(False)
        self._runner = AsyncRunner()
        self._runner.run(find_signers(cosigner, kind, amount=amount, min_reputation=rep,
                                      history=history),
                         self._on_found)

    def _on_found(self, ads, exc) -> None:
        self.refresh_button.setEnabled(True)
        if exc is not None:
            self.status.setText(_("Search failed: {}").format(user_message(exc)))
            return
        self.set_signers(ads)

    def set_signers(self, ads) -> None:
        self.ads = list(ads)
        observed = self.plugin.observed_reputation(self.wallet)

        def seen(ad) -> str:
            done, invalid, timeout = observed.get(ad.owner.hex(), [0, 0, 0])
            return f"{done}/{invalid}/{timeout}"
        fill_table(self.table, [[ad.nickname or "—", short_key(ad.owner.hex()),
                            ", ".join(t.value for t in ad.tx_types),
                            f"{ad.min_amount_sat:,}–{ad.max_amount_sat:,}",
                            sats(ad.fee_per_signature_sat), str(ad.reputation), seen(ad)]
                           for ad in self.ads])
        self.status.setText(_("{} signers found. Order: your own sessions with each signer, then "
                              "how long you have seen its key; the claimed reputation does not "
                              "move anyone up.").format(len(self.ads)))

    def selected(self) -> list:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.ads[r] for r in rows if r < len(self.ads)]

    def create_output(self) -> None:
        from .qt_recovery import BackupDialog
        picked = self.selected()
        if not picked:
            self.show_error(_("Select at least one co-signer."))
            return
        me = self.plugin.cached_participant_key(self.wallet)
        if me is None:
            self.show_error(_("Start the co-signing node first (it derives your key)."))
            return
        nick = ", ".join(ad.nickname or short_key(ad.owner.hex()) for ad in picked)
        try:
            self.created = self.plugin.create_output(self.wallet, me.pubkey,
                                                     keys=[ad.owner for ad in picked],
                                                     label=_("with {}").format(nick),
                                                     recovery=self.policy.spec(len(picked) + 1))
        except Musig2Error as exc:
            self.show_error(user_message(exc))
            return
        if self.on_created is not None:
            self.on_created(self.created)
        # the user is asked to back it up
        self.backup = BackupDialog(self.parent(), self.created.output)
        self.backup.show()
        self.accept()


# --------------------------------------------------------------------------------------------
class ApprovalDialog(WindowModalDialog):
    """An incoming signing request, shown from its transaction; Approve joins its sessions."""

    def __init__(self, parent, state: "RequestState", wallet=None, *,
                 approve: Optional[Callable[[], Any]] = None):
        """``approve``: returns the coroutine that approves (``WalletCosigner.approve``, the
        same call as the ``approve`` command, so both paths go through the same review and the
        node's re-check before joining). The dialog closes only once that succeeded; a refusal
        is shown in the dialog and nothing is joined."""
        super().__init__(parent, _("MuSig2 signing request"))
        self.state = state
        self._approve = approve
        self._runner = AsyncRunner()
        self.setMinimumWidth(720)
        vbox = QVBoxLayout(self)
        review = state.review
        grid = QGridLayout()
        grid.addWidget(QLabel(_("Requested by")), 0, 0)
        grid.addWidget(QLabel(short_key(state.record.creator.hex())), 0, 1)
        grid.addWidget(QLabel(_("Co-signers")), 1, 0)
        grid.addWidget(QLabel(", ".join(short_key(k.hex()) for k in state.record.keys)), 1, 1)
        grid.addWidget(QLabel(_("Transaction")), 2, 0)
        grid.addWidget(QLabel(state.txid or "—"), 2, 1)
        vbox.addLayout(grid)
        if review is None:
            vbox.addWidget(WWLabel(_("This request was refused: {}").format(state.error)))
            self.outputs_table = make_table([_("address"), _("amount")])
            self.fee_label = QLabel("")
        else:
            vbox.addWidget(QLabel(_("Outputs (computed from the transaction itself):")))
            self.outputs_table = make_table([_("address"), _("amount"), _("note")])
            rows = []
            for o in review.outputs:
                note = []
                if o.musig is not None:
                    note.append(_("MuSig2 output"))
                if wallet is not None and o.address and wallet.is_mine(o.address):
                    note.append(_("yours"))
                rows.append([o.address or o.script_hex, sats(o.value_sats), ", ".join(note)])
            fill_table(self.outputs_table, rows)
            vbox.addWidget(self.outputs_table)
            vbox.addWidget(QLabel(_("Inputs:")))
            self.inputs_table = make_table([_("coin"), _("amount"), _("to sign"),
                                        _("recovery path")])
            fill_table(self.inputs_table, [[i["prevout"], sats(i["value_sats"]),
                                       _("yes") if n in review.messages else "",
                                       i.get("recovery") or _("none")]
                                      for n, i in enumerate(review.inputs)])
            vbox.addWidget(self.inputs_table)
            self.fee_label = QLabel(_("Fee: {}").format(sats(review.fee_sats)))
            vbox.addWidget(self.fee_label)
        self.error_label = WWLabel("")
        vbox.addWidget(self.error_label)
        self.approve_button = QPushButton(_("Approve and sign"))
        self.approve_button.setEnabled(review is not None
                                       and state.status == RequestStatus.PENDING)
        self.approve_button.clicked.connect(self.accept)
        self.reject_button = QPushButton(_("Reject"))
        self.reject_button.clicked.connect(self.reject)
        vbox.addLayout(Buttons(self.reject_button, self.approve_button))

    def accept(self) -> None:
        """Approve through the co-signing service; close only if it joined."""
        if self._approve is None:
            super().accept()
            return
        self.approve_button.setEnabled(False)
        self.error_label.setText(_("Checking the request again and joining…"))
        self._runner = AsyncRunner()
        self._runner.run(self._approve(), self._on_approved)

    def _on_approved(self, _state, exc) -> None:
        if exc is not None:
            self.error_label.setText(_("Not approved: {}").format(user_message(exc)))
            return                            # stays open; Approve stays disabled
        self.error_label.setText("")
        super().accept()


# --------------------------------------------------------------------------------------------
class ProgressDialog(WindowModalDialog):
    """join -> round 1 -> round 2 -> signed -> broadcast, live from the request's events."""

    STEPS = [(RequestEvent.JOINED, _("Joined the signing sessions")),
             (RequestEvent.READY, _("All co-signers joined")),
             (RequestEvent.ROUND1, _("Round 1: public nonces")),
             (RequestEvent.ROUND2, _("Round 2: partial signatures")),
             (RequestEvent.SIGNED, _("Transaction signed")), (RequestEvent.BROADCAST, _("Broadcast"))]
    changed = pyqtSignal()

    def __init__(self, parent, plugin, wallet, state: "RequestState"):
        super().__init__(parent, _("MuSig2 signing"))
        self.plugin, self.wallet, self.state = plugin, wallet, state
        vbox = QVBoxLayout(self)
        self.tx_label = WWLabel("")
        vbox.addWidget(self.tx_label)
        self.labels: dict[RequestEvent, QLabel] = {}
        for key, text in self.STEPS:
            label = QLabel()
            self.labels[key] = label
            vbox.addWidget(label)
        self.error_label = WWLabel("")
        vbox.addWidget(self.error_label)
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        vbox.addLayout(Buttons(self.cancel_button, CloseButton(self)))
        self.changed.connect(self.refresh)
        self._listener = lambda w, what, st: (w is self.wallet and st is self.state
                                              and self.changed.emit())
        plugin.listeners.append(self._listener)
        self.finished.connect(lambda _r: self._detach())
        self.refresh()

    def _detach(self) -> None:
        if self._listener in self.plugin.listeners:
            self.plugin.listeners.remove(self._listener)

    def refresh(self) -> None:
        phases = self.state.phases
        self.tx_label.setText(_("Transaction {} ({})").format(self.state.txid or "—",
                                                               _(self.state.status)))
        for key, text in self.STEPS:
            done = key in phases
            if key == RequestEvent.READY and RequestEvent.ROUND1 in phases:
                done = True
            # seconds since the request was created: where a slow step shows
            when = f"  ({phases[key] - self.state.created:.2f} s)" if key in phases else ""
            self.labels[key].setText(("✔ " if done else "… ") + text + when)
        if self.state.error:
            self.error_label.setText(self.state.error)
        self.cancel_button.setEnabled(self.state.status in (RequestStatus.PENDING,
                                                             RequestStatus.APPROVED))

    def cancel(self) -> None:
        try:
            self.plugin.cosigner(self.wallet).cancel(self.state.key)
        except Exception as exc:
            self.error_label.setText(user_message(exc))
        self.refresh()


# --------------------------------------------------------------------------------------------
class SpendDialog(WindowModalDialog):
    """Spend from a MuSig2 output: build the transaction, announce the request, follow progress."""

    def __init__(self, parent, plugin, wallet, stored):
        super().__init__(parent, _("Spend from MuSig2 output"))
        self.plugin, self.wallet, self.stored = plugin, wallet, stored
        self.state = None
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_("From {} ({} co-signers). Every co-signer reviews this "
                                 "transaction and must approve it.").format(
            stored.output.address(), len(stored.output.participants))))
        form = QGridLayout()
        self.payto_edit = QLineEdit()
        self.amount_edit = QLineEdit()
        self.amount_edit.setPlaceholderText(_("satoshis"))
        self.feerate_edit = QLineEdit("2")
        for row, (label, w) in enumerate(((_("Pay to"), self.payto_edit),
                                          (_("Amount (sat)"), self.amount_edit),
                                          (_("Fee rate (sat/vbyte)"), self.feerate_edit))):
            form.addWidget(QLabel(label), row, 0)
            form.addWidget(w, row, 1)
        vbox.addLayout(form)
        self.error_label = WWLabel("")
        vbox.addWidget(self.error_label)
        self.request_button = QPushButton(_("Request signatures"))
        self.request_button.clicked.connect(self.request)
        vbox.addLayout(Buttons(CloseButton(self), self.request_button))
        self._runner = AsyncRunner()

    def request(self) -> None:
        try:
            amount = int(self.amount_edit.text().strip().replace(",", ""))
            feerate = float(self.feerate_edit.text().strip())
        except ValueError:
            self.error_label.setText(_("Amount must be whole satoshis and the fee rate a number."))
            return
        address = self.payto_edit.text().strip()
        plugin, wallet = self.plugin, self.wallet

        async def go():
            tx = await plugin.build_spend_request(wallet, None, [(address, amount)],
                                                  from_refs=[self.stored.output.descriptor],
                                                  feerate_sat_vb=feerate)
            return await plugin.cosigner(wallet).request_spend(tx)
        self.request_button.setEnabled(False)
        self._runner = AsyncRunner()
        self._runner.run(go(), self._on_done)

    def _on_done(self, state, exc) -> None:
        self.request_button.setEnabled(True)
        if exc is not None:
            self.error_label.setText(user_message(exc))
            return
        self.state = state
        ProgressDialog(self.parent(), self.plugin, self.wallet, state).show()
        self.accept()


# --------------------------------------------------------------------------------------------
class OverviewDialog(WindowModalDialog):
    """The wallet's MuSig2 outputs (with balances) and its signing sessions."""

    def __init__(self, parent, plugin, wallet):
        super().__init__(parent, _("MuSig2 outputs and sessions"))
        self.plugin, self.wallet = plugin, wallet
        self.setMinimumWidth(820)
        vbox = QVBoxLayout(self)
        tabs = QTabWidget()
        self.outputs_table = make_table([_("label"), _("address"), _("co-signers"), _("confirmed"),
                                     _("unconfirmed"), _("coins"), _("recovery")])
        self.sessions_table = make_table([_("request"), _("role"), _("status"), _("txid"),
                                      _("fee"), _("error")])
        tabs.addTab(self.outputs_table, _("Outputs"))
        tabs.addTab(self.sessions_table, _("Sessions"))
        vbox.addWidget(tabs)
        self.spend_button = QPushButton(_("Spend from selected output..."))
        self.spend_button.clicked.connect(self.spend_selected)
        self.fund_button = QPushButton(_("Pay to selected output"))
        self.fund_button.clicked.connect(self.fund_selected)
        self.recover_button = QPushButton(_("Recover..."))
        self.recover_button.clicked.connect(self.recover_selected)
        self.import_button = QPushButton(_("Import descriptor..."))
        self.import_button.clicked.connect(self.import_descriptor)
        self.sign_recovery_button = QPushButton(_("Sign recovery..."))
        self.sign_recovery_button.clicked.connect(self.sign_recovery)
        vbox.addLayout(Buttons(self.import_button, self.fund_button, self.spend_button,
                               self.recover_button, self.sign_recovery_button,
                               CloseButton(self)))
        self.refresh()
        # Balances follow the server live (the output watcher); the view re-reads them.
        from PyQt6.QtCore import QTimer
        self._timer = QTimer(self)
        self._timer.setInterval(2000)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def _selected(self):
        rows = sorted({i.row() for i in self.outputs_table.selectedIndexes()})
        outs = self.plugin.vaults(self.wallet).all()
        return outs[rows[0]] if rows and rows[0] < len(outs) else None

    def spend_selected(self):
        stored = self._selected()
        if stored is None:
            self.show_error(_("Select an output first."))
            return None
        d = SpendDialog(self.parent(), self.plugin, self.wallet, stored)
        d.show()
        return d

    def import_descriptor(self):
        from .qt_recovery import ImportDialog
        d = ImportDialog(self.parent(), self.plugin, self.wallet)
        d.show()
        return d

    def sign_recovery(self):
        from .qt_recovery import SignRecoveryDialog
        d = SignRecoveryDialog(self.parent(), self.plugin, self.wallet)
        d.show()
        return d

    def recover_selected(self):
        from .qt_recovery import RecoverDialog
        stored = self._selected()
        if stored is None or stored.output.recovery is None:
            self.show_error(_("Select an output with a recovery path first."))
            return None
        d = RecoverDialog(self.parent(), self.plugin, self.wallet, stored)
        d.show()
        return d

    def fund_selected(self) -> None:
        stored = self._selected()
        window = self.parent()
        if stored is not None and hasattr(window, "send_tab"):
            window.send_tab.set_payment_identifier(stored.output.address())
            window.tabs.setCurrentWidget(window.send_tab)
            self.accept()

    def refresh(self) -> None:
        from .app import recovery
        watcher = self.plugin.watcher
        rows = []
        for s in self.plugin.vaults(self.wallet).all():
            opens = recovery.earliest_recovery(self.plugin, self.wallet, s.output)
            bal = watcher.balance(s.output) if watcher is not None else None
            coins = len(watcher.coins(s.output)) if watcher is not None else None
            rows.append([s.label, s.output.address(), str(len(s.output.participants)),
                         sats(bal["confirmed"]) if bal else "—",
                         sats(bal["unconfirmed"]) if bal else "—",
                         "—" if coins is None else str(coins),
                         (_("none") if s.output.recovery is None else
                          _("from block {}").format(opens) if opens else
                          _("{} blocks after funding").format(s.output.recovery.blocks))])
        if rows != getattr(self, "_last_rows", None):    # keep the user's selection otherwise
            self._last_rows = rows
            fill_table(self.outputs_table, rows)
        c = self.plugin.cosigners.get(id(self.wallet))
        states = sorted(c.requests.values(), key=lambda s: s.created) if c else []
        fill_table(self.sessions_table, [[short_key(s.key.hex()), s.role, s.status, s.txid or "—",
                                     sats(s.review.fee_sats) if s.review else "—", s.error or ""]
                                    for s in states])
