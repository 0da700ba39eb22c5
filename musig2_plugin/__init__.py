"""musig2_plugin: co-sign Bitcoin transactions with MuSig2 (BIP-327) from Electrum.

Electrum executes this module when it loads the plugin and expects the plugin's
``@plugin_command`` definitions to be registered by it. The core layers
(crypto, records, dht, transport, session, coordinator) must stay usable
without Electrum, so the commands are only imported when Electrum is.
"""
import sys as _sys
import types as _types

# Electrum 4.8 imports a zip plugin as ``electrum_external_plugins.<name>`` but never creates the
# ``electrum_external_plugins`` package itself. CPython's ``from . import x`` (and ``from .pkg
# import submodule``) then fails with "No module named 'electrum_external_plugins'" because the
# import machinery re-imports the top-level name. An empty namespace parent makes every relative
# import in this package work under Electrum (tests/test_foundation_plugin.py imports all modules
# through Electrum's own zip importer to keep it so).
_parent = __name__.rpartition(".")[0]
if _parent and _parent not in _sys.modules:
    _ns = _types.ModuleType(_parent)
    _ns.__path__ = []  # a package with no locations: its children come from their own finders
    _sys.modules[_parent] = _ns

try:
    import electrum.commands as _electrum_commands  # noqa: F401
except ImportError:  # core used on its own (tests, benchmarks, the demo's nodes)
    _electrum_commands = None

if _electrum_commands is not None:
    from . import commands, recovery_commands  # noqa: F401  (registers the plugin commands)
