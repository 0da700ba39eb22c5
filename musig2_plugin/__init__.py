"""musig2_plugin: co-sign Bitcoin transactions with MuSig2 (BIP-327) from Electrum.

Electrum executes this module when it loads the plugin and expects the plugin's
``@plugin_command`` definitions to be registered by it. The core layers
(crypto, records, dht, transport, session, coordinator) must stay usable
without Electrum, so the commands are only imported when Electrum is.
"""
try:
    import electrum.commands as _electrum_commands  # noqa: F401
except ImportError:  # core used on its own (tests, benchmarks, the demo's nodes)
    _electrum_commands = None

if _electrum_commands is not None:
    from . import commands  # noqa: F401  (registers the plugin commands)
