"""settings.py declares the plugin's settings as Electrum ConfigVars, safely importable twice.

Electrum loads the package from the zip as ``electrum_external_plugins.musig2_plugin`` while
tests import ``musig2_plugin``, and ``ConfigVar`` refuses a key registered twice: a second
load of the module must reuse the declarations, and an attribute bound to something else
must be refused, never overwritten. Real Electrum SimpleConfig, no daemon needed here (the
daemon and Qt paths are in tests/edge_daemon/test_settings_configvars.py and tests/edge_gui).
"""
from __future__ import annotations

import importlib.util
import sys

import pytest
from electrum.simple_config import ConfigVar, SimpleConfig

from musig2_plugin import settings
from musig2_plugin.foundation.errors import Musig2Error
from musig2_plugin.network_settings import CONFIG_NETWORK_MODE, CONFIG_PROXY
from musig2_plugin.plugin import CONFIG_AD_NICK, CONFIG_NODE_ENABLED, REACH_KEYS


def _load_again(name: str):
    """Execute settings.py a second time under another module name, as the zip importer does."""
    spec = importlib.util.spec_from_file_location(name, settings.__file__,
                                                  submodule_search_locations=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "musig2_plugin"
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def test_the_keys_are_the_ones_existing_configs_use():
    assert CONFIG_NODE_ENABLED == "plugins.musig2_plugin.node_enabled"
    assert CONFIG_AD_NICK == "plugins.musig2_plugin.ad_nickname"
    assert CONFIG_NETWORK_MODE == "plugins.musig2_plugin.network_mode"
    assert CONFIG_PROXY == "plugins.musig2_plugin.proxy"
    assert REACH_KEYS["public_port"] == "plugins.musig2_plugin.public_port"
    assert all(isinstance(v, ConfigVar) and v.key().startswith("plugins.musig2_plugin.")
               for v in settings.ALL)
    assert len({v.key() for v in settings.ALL}) == len(settings.ALL)


def test_a_second_load_reuses_the_declarations():
    again = _load_again("musig2_plugin._settings_second_load")
    assert again.ADVERTISE is settings.ADVERTISE
    assert [v.key() for v in again.ALL] == [v.key() for v in settings.ALL]


def test_an_attribute_bound_elsewhere_is_refused_not_overwritten(monkeypatch):
    monkeypatch.setattr(SimpleConfig, "MUSIG2_ADVERTISE", "something else")
    with pytest.raises(Musig2Error, match="MUSIG2_ADVERTISE") as err:
        _load_again("musig2_plugin._settings_clash")
    assert type(err.value).__name__ == "SettingsClash"     # the reloaded module's own class
    assert SimpleConfig.__dict__["MUSIG2_ADVERTISE"] == "something else"


def test_values_read_and_written_through_the_variables(tmp_path):
    config = SimpleConfig({"electrum_path": str(tmp_path), "regtest": True})
    assert config.MUSIG2_ADVERTISE is False and config.MUSIG2_AD_TYPES == "spend"
    assert config.MUSIG2_LISTEN_HOST == "127.0.0.1" and config.MUSIG2_AD_MAX_SAT is None
    config.set_key(CONFIG_AD_NICK, "alice")              # the old way still lands in the same key
    assert config.MUSIG2_AD_NICKNAME == "alice"
    config.MUSIG2_NODE_ENABLED = True
    assert config.get(CONFIG_NODE_ENABLED) is True
    config.set_key(CONFIG_NODE_ENABLED, None)            # cleared: back to the declared default
    assert config.MUSIG2_NODE_ENABLED is False
    with pytest.raises(AttributeError):
        config.MUSIG2_NO_SUCH_SETTING = 1                 # a mistyped setting is refused
