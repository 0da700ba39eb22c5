"""Entry point Electrum loads for the desktop GUI (gui name ``qt``).

* Settings: the co-signing node (on/off, listen on this machine or all interfaces, listen port,
  public host/port, bootstrap peers; how a running node is reached; network: proxy policy and
  Tor control port, docs/tor.md) and "advertise me"
  (accepted types, amount range, fee, nickname), saved in Electrum's config on OK only.
* Send tab: a **Co-sign (MuSig2)** button next to Electrum's own buttons opens the signer picker
  (fed by DHT discovery); the new MuSig2 output's address is put in "Pay to", so funding it is an
  ordinary Electrum send.
* Tools menu: "MuSig2 outputs and sessions" (balances followed live, signing sessions).
* A background listener: an incoming signing request pops a notification and the approval
  dialog (computed from the transaction); approving shows the progress dialog.
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Optional

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QPushButton,
                             QSpinBox, QVBoxLayout, QWidget)

from electrum.i18n import _
from electrum.plugin import hook
from electrum.gui.qt.util import Buttons, CloseButton, OkButton, WindowModalDialog, WWLabel

from .app import RequestEvent, RequestStatus, check_nickname, user_message
from .foundation.constants import MAX_NICKNAME_BYTES, MAX_OPEN_APPROVAL_DIALOGS
from .foundation.errors import Musig2Error
from .plugin import (CONFIG_AD_FEE, CONFIG_AD_MAX, CONFIG_AD_MIN, CONFIG_AD_NICK, CONFIG_AD_TYPES,
                     CONFIG_ADVERTISE, CONFIG_BOOTSTRAP, CONFIG_LISTEN_HOST, CONFIG_LISTEN_PORT,
                     CONFIG_PUBLIC_HOST, CONFIG_PUBLIC_PORT, Musig2Plugin, parse_peers)

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QWidget as _QWidget

COSIGN_BUTTON_NAME = "musig2_cosign_button"


class SettingsDialog(WindowModalDialog):
    """The plugin's settings. Saved only on OK, so Close/Escape leaves them unchanged."""

    def __init__(self, parent: "_QWidget", plugin: "Plugin"):
        super().__init__(parent, _("MuSig2 Co-signing"))
        self.plugin = plugin
        cfg = plugin.config
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_(
            "Run the co-signing node: it publishes what you accept to co-sign in a public "
            "peer-to-peer directory and listens for signing requests addressed to your key. "
            "Nothing is signed without your approval.")))
        self.node_checkbox = QCheckBox(_("Run the co-signing node"))
        self.node_checkbox.setChecked(plugin.is_node_enabled())
        vbox.addWidget(self.node_checkbox)
        # A libsecp256k1 without MuSig2: say so in one line; the node cannot be switched on.
        self.problem_label = WWLabel(plugin.crypto_problem or "")
        self.problem_label.setVisible(plugin.crypto_problem is not None)
        vbox.addWidget(self.problem_label)
        if plugin.crypto_problem is not None:
            self.node_checkbox.setChecked(False)
            self.node_checkbox.setEnabled(False)
        form = QFormLayout()
        net = plugin.network_settings_status()
        self.listen_all_checkbox = QCheckBox(_("Accept connections from other machines "
                                               "(listen on all interfaces)"))
        self.listen_all_checkbox.setChecked(str(cfg.MUSIG2_LISTEN_HOST) in ("0.0.0.0", "::"))
        form.addRow(self.listen_all_checkbox)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText(
            _("default ({})").format(net.get("listen_port", "")) if "error" not in net
            else _("default"))
        self.port_spin.setValue(int(cfg.MUSIG2_LISTEN_PORT or 0))
        form.addRow(_("Listen port"), self.port_spin)
        self.public_host_edit = QLineEdit(str(cfg.MUSIG2_PUBLIC_HOST or ""))
        self.public_host_edit.setPlaceholderText(_("none (IP or DNS name others connect to)"))
        form.addRow(_("Public host"), self.public_host_edit)
        self.public_port_spin = QSpinBox()
        self.public_port_spin.setRange(0, 65535)
        self.public_port_spin.setSpecialValueText(_("same as the listen port"))
        self.public_port_spin.setValue(int(cfg.MUSIG2_PUBLIC_PORT or 0))
        form.addRow(_("Public port"), self.public_port_spin)
        self.bootstrap_edit = QLineEdit(str(cfg.MUSIG2_BOOTSTRAP or ""))
        self.bootstrap_edit.setPlaceholderText("host:port, host:port")
        form.addRow(_("Bootstrap peers"), self.bootstrap_edit)
        vbox.addLayout(form)
        self.advertise_checkbox = QCheckBox(_("Advertise me as a co-signer"))
        self.advertise_checkbox.setChecked(bool(cfg.MUSIG2_ADVERTISE))
        vbox.addWidget(self.advertise_checkbox)
        ad = QFormLayout()
        self.types_edit = QLineEdit(str(cfg.MUSIG2_AD_TYPES))
        ad.addRow(_("Transaction types"), self.types_edit)
        self.min_edit = QLineEdit(str(cfg.MUSIG2_AD_MIN_SAT))
        self.max_edit = QLineEdit(str(cfg.MUSIG2_AD_MAX_SAT or ""))
        self.max_edit.setPlaceholderText(_("no limit"))
        ad.addRow(_("Smallest amount (sat)"), self.min_edit)
        ad.addRow(_("Largest amount (sat)"), self.max_edit)
        self.fee_edit = QLineEdit(str(cfg.MUSIG2_AD_FEE_SAT))
        ad.addRow(_("Fee per signature (sat)"), self.fee_edit)
        self.nick_edit = QLineEdit(str(cfg.MUSIG2_AD_NICKNAME or ""))
        # Characters, not bytes: a non-ASCII name can still be too long; values() says so.
        self.nick_edit.setMaxLength(MAX_NICKNAME_BYTES)
        ad.addRow(_("Nickname"), self.nick_edit)
        vbox.addLayout(ad)
        self._add_network_rows(vbox)
        self.state_label = QLabel()
        self.reach_label = WWLabel("")
        self.refresh_state()
        vbox.addWidget(self.state_label)
        vbox.addWidget(self.reach_label)
        self.error_label = QLabel("")
        vbox.addWidget(self.error_label)
        vbox.addLayout(Buttons(CloseButton(self), OkButton(self)))

    def _add_network_rows(self, vbox: QVBoxLayout) -> None:
        """Network: mode, the plugin's own proxy, Tor's control port, and how the node would
        be reached (or why the settings are refused) -- docs/tor.md."""
        cfg = self.plugin.config
        net = QFormLayout()
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["auto", "direct", "proxy"])
        self.mode_combo.setCurrentText(str(cfg.MUSIG2_NETWORK_MODE or "auto"))
        net.addRow(_("Network"), self.mode_combo)
        self.proxy_edit = QLineEdit(str(cfg.MUSIG2_PROXY or ""))
        self.proxy_edit.setPlaceholderText(_("Electrum's proxy, if any (or socks5:host:port)"))
        net.addRow(_("Own proxy"), self.proxy_edit)
        self.control_edit = QLineEdit(str(cfg.MUSIG2_TOR_CONTROL or ""))
        self.control_edit.setPlaceholderText(_("127.0.0.1:9051 for an onion service"))
        net.addRow(_("Tor control port"), self.control_edit)
        vbox.addLayout(net)
        status = self.plugin.network_status()
        self.network_label = WWLabel(
            _("Refused: ") + status["refused"] if "refused" in status else
            _("Reachable: {}. Connections: {}").format(status["reachability"], status["path"]))
        vbox.addWidget(self.network_label)

    def network_values(self, listen_host: str, public_host: Optional[str]) -> dict:
        """The network settings, checked by the proxy policy together with the listen and
        public host chosen in this dialog (PolicyError, a ValueError, when they would leak or
        cannot work: the dialog stays open and nothing is saved)."""
        from .network_settings import (CONFIG_NETWORK_MODE, CONFIG_PROXY, CONFIG_TOR_CONTROL,
                                       network_plan, parse_tor_control)
        mode, proxy = self.mode_combo.currentText(), self.proxy_edit.text().strip()
        network_plan(self.plugin.config, listen_host, public_host, mode=mode, proxy=proxy or "none")
        parse_tor_control(self.control_edit.text())
        return {CONFIG_NETWORK_MODE: mode, CONFIG_PROXY: proxy,
                CONFIG_TOR_CONTROL: self.control_edit.text().strip()}

    def refresh_state(self) -> None:
        running = self.plugin.is_node_running()
        self.state_label.setText(_("Node: running") if running else _("Node: stopped"))
        self.reach_label.setText(self.reach_text())

    def reach_text(self) -> str:
        """How the running node(s) are reached: the chain, where they listen, what they publish
        (directly, or through which relays: the status command's ``reach``)."""
        lines = []
        for c in list(getattr(self.plugin, "cosigners", {}).values()):
            status = c.status() if c.is_running() else {}
            reach, how = status.get("network"), status.get("reach") or {}
            if not reach:
                continue
            listen = "{}:{}".format(*reach["listen"])
            relays = [_relay_text(r) for r in how.get("relays") or []]
            if status.get("reach_pending"):
                lines.append(_("{chain}: listening on {listen}; finding out how other machines "
                               "reach it (dial-back, relays)…")
                             .format(chain=reach["chain"], listen=listen))
            elif how.get("path") == "relay" and relays:
                lines.append(_("{chain}: listening on {listen}; not directly reachable, reached "
                               "through relay {relays}")
                             .format(chain=reach["chain"], listen=listen,
                                     relays=", ".join(relays)))
            elif reach["endpoint"]:
                lines.append(_("{chain}: listening on {listen}, reached directly at {endpoint}")
                             .format(chain=reach["chain"], listen=listen,
                                     endpoint="{}:{}".format(*reach["endpoint"])))
            else:
                lines.append(_("{chain}: listening on {listen}; not reachable from other machines "
                               "(set a public host to advertise)")
                             .format(chain=reach["chain"], listen=listen))
        return "\n".join(lines)

    def values(self) -> dict:
        """Validated settings, or ValueError with a sentence for the user."""
        parse_peers(self.bootstrap_edit.text())          # raises on a bad peer
        def amount(edit, default):
            text = edit.text().strip().replace(",", "")
            if not text:
                return default
            if not text.isdigit():
                raise ValueError(_("amounts are whole satoshis"))
            return int(text)
        from .app import TxType
        types = [t.strip() for t in self.types_edit.text().split(",") if t.strip()]
        for t in types:
            TxType(t)                                      # raises ValueError on unknown
        lo, hi = amount(self.min_edit, 0), amount(self.max_edit, None)
        if hi is not None and hi < lo:
            raise ValueError(_("the largest amount is below the smallest"))
        listen_host = "0.0.0.0" if self.listen_all_checkbox.isChecked() else "127.0.0.1"
        public_host = self.public_host_edit.text().strip()
        public_port = self.public_port_spin.value() or None
        # the same checks as the node's start (raises NodeSettingsError with the reason)
        self.plugin.reach_settings(listen_host=listen_host, listen_port=self.port_spin.value(),
                                   public_host=public_host, public_port=public_port or 0)
        network = self.network_values(listen_host, public_host or None)
        return {**network, CONFIG_LISTEN_PORT: self.port_spin.value(),
                CONFIG_LISTEN_HOST: listen_host,
                CONFIG_PUBLIC_HOST: public_host,
                CONFIG_PUBLIC_PORT: public_port or 0,
                CONFIG_BOOTSTRAP: self.bootstrap_edit.text().strip(),
                CONFIG_ADVERTISE: self.advertise_checkbox.isChecked(),
                CONFIG_AD_TYPES: ",".join(types) or "spend", CONFIG_AD_MIN: lo, CONFIG_AD_MAX: hi,
                CONFIG_AD_FEE: amount(self.fee_edit, 0),
                CONFIG_AD_NICK: check_nickname(self.nick_edit.text())}

    def accept(self) -> None:
        try:
            values = self.values()
        except Musig2Error as exc:
            self.error_label.setText(user_message(exc))
            return                      # stay open; nothing saved
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.save(values)
        super().accept()

    def save(self, values: Optional[dict] = None) -> None:
        self.plugin.set_node_enabled(self.node_checkbox.isChecked())
        for key, value in (values or {}).items():
            self.plugin.config.set_key(key, value)
        apply = getattr(self.plugin, "apply_node_setting", None)
        if apply is not None:
            apply()


class _Bridge(QObject):
    """Carries request events from the asyncio thread to the GUI thread."""
    request_event = pyqtSignal(object, str, object)


class Plugin(Musig2Plugin):

    def __init__(self, parent, config, name):
        super().__init__(parent, config, name)
        self._bridge = _Bridge()
        self._bridge.request_event.connect(self._on_request_event_gui)
        self.listeners.append(lambda wallet, what, state:
                              self._bridge.request_event.emit(wallet, what, state))
        self._windows: dict[int, object] = {}
        self._approval_dialogs: list = []
        self.auto_open_approval = True
        if self.crypto_problem is not None:
            self._show_problem_in_plugins_dialog()

    def _show_problem_in_plugins_dialog(self) -> None:
        """Put the one line first in our entry's description, which Tools > Plugins shows.

        Electrum's PluginMetadata is frozen, so our own entry is replaced by a copy (path and
        zip hash unchanged, so authorization is unaffected); no other plugin's entry is touched.
        """
        import dataclasses
        registry = getattr(self.parent, "external_plugin_metadata", None)
        meta = registry.get(self.name) if isinstance(registry, dict) else None
        if meta is None or meta.description.startswith(self.crypto_problem):
            return
        registry[self.name] = dataclasses.replace(
            meta, description=f"{self.crypto_problem}\n\n{meta.description}")

    # --- settings ---------------------------------------------------------------------------
    def settings_widget(self, window):
        from electrum.gui.qt.util import EnterButton
        return EnterButton(_("Settings"), partial(self.settings_dialog, window))

    def settings_dialog(self, window) -> bool:
        return bool(SettingsDialog(window, self).exec())

    # --- windows ----------------------------------------------------------------------------
    @hook
    def load_wallet(self, wallet, window=None) -> None:
        self.on_wallet_loaded(wallet)
        if window is None:
            return
        self._windows[id(wallet)] = window
        self.install_send_button(window)
        self.install_menu(window)
        if (self.is_node_enabled() and wallet.has_keystore_encryption()
                and id(wallet) not in self.cosigners):
            # "Leave Electrum open and requests reach you": an encrypted wallet's node needs the
            # password once; ask after the window is up (not inside Electrum's load sequence).
            from PyQt6.QtCore import QTimer
            QTimer.singleShot(0, lambda: self._start_node_asking(window))

    @hook
    def close_wallet(self, wallet) -> None:
        self._windows.pop(id(wallet), None)
        self.on_wallet_closed(wallet)

    def install_send_button(self, window) -> Optional[QPushButton]:
        """Put **Co-sign (MuSig2)** next to Electrum's own send-tab buttons (once)."""
        send_tab = getattr(window, "send_tab", None)
        if send_tab is None:
            return None
        existing = send_tab.findChild(QPushButton, COSIGN_BUTTON_NAME)
        if existing is not None:
            return existing
        button = QPushButton(_("Co-sign (MuSig2)") + "...")
        button.setObjectName(COSIGN_BUTTON_NAME)
        button.setToolTip(_("Create an output co-owned with co-signers found in the directory"))
        button.clicked.connect(lambda: self.open_signer_picker(window))
        anchor = send_tab.send_button
        layout = _layout_containing(send_tab, anchor)
        if layout is not None:
            layout.insertWidget(layout.indexOf(anchor), button)
        else:                                    # Electrum changed its layout: still reachable
            send_tab.layout().addWidget(button)
        return button

    def install_menu(self, window) -> None:
        menu = getattr(window, "tools_menu", None)
        if menu is None or getattr(window, "_musig2_menu", None) is not None:
            return
        window._musig2_menu = menu.addAction(_("MuSig2 outputs and sessions"),
                                             lambda: self.open_overview(window))

    def apply_node_setting(self) -> None:
        """Settings saved: start the node for open wallets, or stop it, right away."""
        import asyncio
        from electrum.util import get_asyncio_loop
        for key, window in list(self._windows.items()):
            if self.is_node_enabled():
                if key not in self.cosigners:
                    from PyQt6.QtCore import QTimer
                    QTimer.singleShot(0, lambda w=window: self._start_node_asking(w))
            elif key in self.cosigners:
                asyncio.run_coroutine_threadsafe(self.stop_node(window.wallet), get_asyncio_loop())

    def _start_node_asking(self, window) -> None:
        try:
            from .wallet_bridge import check_supported
            check_supported(window.wallet)
        except Exception:
            return          # unsupported wallets simply have no node
        self.ensure_node(window)

    # --- dialogs ----------------------------------------------------------------------------
    def ensure_node(self, window) -> bool:
        """Start the node for the window's wallet, asking for the password if needed."""
        wallet = window.wallet
        if id(wallet) in self.cosigners and self.cosigners[id(wallet)].is_running():
            return True
        password = None
        if wallet.has_keystore_encryption():
            password = wallet.get_unlocked_password() or window.password_dialog(
                msg=_("Your MuSig2 participant key is derived from your seed."))
            if not password:
                return False
        # Electrum's own non-blocking wait: a modal "please wait" dialog with a Cancel button
        # keeps the GUI event loop running while the node starts on the asyncio thread.
        from electrum.util import UserCancelled
        try:
            window.run_coroutine_dialog(self.start_node(wallet, password),
                                        _("Starting the co-signing node…"))
        except UserCancelled:
            return False
        except Exception as exc:
            window.show_error(_("The co-signing node did not start: {}").format(user_message(exc)))
            return False
        return True

    def open_signer_picker(self, window):
        from .qt_dialogs import SignerPickerDialog
        if not self.ensure_node(window):
            return None

        def created(stored):
            # Electrum's own payment-identifier path: funding is an ordinary send.
            window.send_tab.set_payment_identifier(stored.output.address())

        d = SignerPickerDialog(window, self, window.wallet, on_created=created)
        d.refresh()
        d.show()
        return d

    def open_overview(self, window):
        from .qt_dialogs import OverviewDialog
        d = OverviewDialog(window, self, window.wallet)
        d.show()
        return d

    def open_approval(self, window, state):
        from .qt_dialogs import ApprovalDialog, ProgressDialog

        async def approve():
            # the same call as the approve command: same review, same re-check before joining
            return await self.cosigner(window.wallet).approve(state.key)
        d = ApprovalDialog(window, state, window.wallet, approve=approve)

        def on_finished(result):
            cosigner = self.cosigners.get(id(window.wallet))
            if cosigner is None:
                return
            if result:               # accepted only after the approval joined the sessions
                ProgressDialog(window, self, window.wallet, state).show()
            elif state.status == RequestStatus.PENDING:
                cosigner.reject(state.key)
        d.finished.connect(on_finished)
        d.show()
        return d

    def _on_request_event_gui(self, wallet, what, state) -> None:
        window = self._windows.get(id(wallet))
        if window is None:
            return
        if what == RequestEvent.RECEIVED:
            window.notify(_("MuSig2 signing request from {}").format(state.record.creator.hex()[:12]))
            # Only requests that passed the review get a dialog, and only a few at once:
            # anyone who knows our public key can send requests.
            open_now = [d for d in self._approval_dialogs if d.isVisible()]
            self._approval_dialogs = open_now
            if (self.auto_open_approval and state.status == RequestStatus.PENDING
                    and len(open_now) < MAX_OPEN_APPROVAL_DIALOGS):
                self._approval_dialogs.append(self.open_approval(window, state))
        elif what in (RequestEvent.BROADCAST, RequestEvent.FAILED):
            window.notify(_("MuSig2 request {}: {}").format(state.key.hex()[:12], state.status))


def _layout_containing(root: QWidget, widget: QWidget):
    """The QBoxLayout (anywhere under ``root``) that holds ``widget``."""
    from PyQt6.QtWidgets import QBoxLayout

    def walk(layout):
        if layout is None:
            return None
        if isinstance(layout, QBoxLayout) and layout.indexOf(widget) >= 0:
            return layout
        for i in range(layout.count()):
            child = layout.itemAt(i).layout()
            found = walk(child)
            if found is not None:
                return found
        return None
    return walk(root.layout())


def _relay_text(relay: list) -> str:
    """A relay in use, as the status lists it (``[host, port, "relay", key hex]``): its short
    key and address, enough to tell relays apart and match the status command's output."""
    if len(relay) == 4 and isinstance(relay[3], str):
        return f"{relay[3][:16]}…@{relay[0]}:{relay[1]}"
    return f"{relay[0]}:{relay[1]}"
