"""Entry point Electrum loads for the desktop GUI (gui name ``qt``).

For now the Qt side offers the plugin's settings dialog: a switch for the co-signing node (the
DHT + peer sessions that let strangers find this wallet and send it signing requests).
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PyQt6.QtWidgets import QCheckBox, QLabel, QVBoxLayout

from electrum.i18n import _
from electrum.gui.qt.util import Buttons, CloseButton, OkButton, WindowModalDialog, WWLabel

from .plugin import Musig2Plugin

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QWidget


class SettingsDialog(WindowModalDialog):
    """The plugin's settings. Saved only on OK, so Close/Escape leaves them unchanged."""

    def __init__(self, parent: "QWidget", plugin: "Plugin"):
        super().__init__(parent, _("MuSig2 Co-signing"))
        self.plugin = plugin
        vbox = QVBoxLayout(self)
        vbox.addWidget(WWLabel(_(
            "Run the co-signing node: it publishes what you accept to co-sign in a public "
            "peer-to-peer directory and listens for signing requests addressed to your key. "
            "Nothing is signed without your approval.")))
        self.node_checkbox = QCheckBox(_("Run the co-signing node"))
        self.node_checkbox.setChecked(plugin.is_node_enabled())
        vbox.addWidget(self.node_checkbox)
        self.state_label = QLabel()
        self.refresh_state()
        vbox.addWidget(self.state_label)
        vbox.addLayout(Buttons(CloseButton(self), OkButton(self)))
        self.accepted.connect(self.save)

    def refresh_state(self) -> None:
        running = self.plugin.is_node_running()
        self.state_label.setText(_("Node: running") if running else _("Node: stopped"))

    def save(self) -> None:
        self.plugin.set_node_enabled(self.node_checkbox.isChecked())


class Plugin(Musig2Plugin):

    def settings_widget(self, window):
        # Electrum's plugin list shows this button; it opens settings_dialog.
        from electrum.gui.qt.util import EnterButton
        return EnterButton(_("Settings"), partial(self.settings_dialog, window))

    def settings_dialog(self, window) -> bool:
        return bool(SettingsDialog(window, self).exec())
