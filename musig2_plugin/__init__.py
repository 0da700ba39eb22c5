"""musig2_plugin: co-sign Bitcoin transactions with MuSig2 (BIP-327) from Electrum.

Electrum executes this module when it loads the plugin and expects the plugin's
``@plugin_command`` definitions to be registered by it. The core layers
(crypto, records, dht, transport, session, coordinator) must stay usable
without Electrum, and importing one of them must not drag in ``electrum.wallet``
merely because Electrum happens to be installed: so the commands are imported
only when Electrum itself loads this package as a plugin, which it does under
``electrum_external_plugins.<name>`` (zip plugins) or ``electrum.plugins.<name>``
(internal ones) -- never under the bare ``musig2_plugin`` name.
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

# The zip carries kademlia/rpcudp/umsgpack for Electrum's binary bundles, which lack them; make
# them importable (only if not installed anyway) before any module of ours imports them.
from . import vendor_import as _vendor_import  # noqa: E402

_vendor_import.install(_sys.modules[__name__])

# The package names Electrum 4.8 gives a plugin it loads (electrum.plugin.Plugins.base_module_name).
_ELECTRUM_PLUGIN_PARENTS = ("electrum_external_plugins", "electrum.plugins")

if _parent in _ELECTRUM_PLUGIN_PARENTS:
    from . import commands, recovery_commands  # noqa: F401  (registers the plugin commands)
