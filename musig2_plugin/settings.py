"""The plugin's settings, declared once as Electrum 4.8 config variables (``ConfigVar``).

Why: Electrum lists, documents and types its settings through ``ConfigVar`` declarations on
``SimpleConfig`` (its own plugins do the same, e.g. ``SimpleConfig.SWAPSERVER_PORT``). Declared
here, the plugin's settings appear in ``electrum listconfig``, have a ``helpconfig`` text, and are
read as ``config.MUSIG2_ADVERTISE`` with one default instead of a default at every call site.
The keys are the ones the plugin always used (``plugins.musig2_plugin.<name>``), so existing
config files keep working; Electrum's ``getconfig``/``setconfig`` treat every ``plugins.*`` key
as a plain key and are unaffected.

Importable twice: Electrum loads the plugin as ``electrum_external_plugins.musig2_plugin`` (from
the zip), tests import ``musig2_plugin``, and ``ConfigVar`` refuses a key registered twice. A
declaration therefore reuses the variable already on ``SimpleConfig`` under the same attribute
when its key matches, and refuses (``SettingsClash``) an attribute bound to another key.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from electrum.simple_config import ConfigVar, SimpleConfig

from .foundation.constants import PLUGIN_NAME
from .foundation.errors import Musig2Error

ATTR_PREFIX = "MUSIG2_"


class SettingsClash(Musig2Error, RuntimeError):
    """A SimpleConfig attribute we declare is already bound to something else: never overwritten."""


def _declare(name: str, *, default: Any, desc: str,
             type_: Optional[Callable[[Any], Any]] = None) -> ConfigVar:
    key = f"plugins.{PLUGIN_NAME}.{name}"
    attr = ATTR_PREFIX + name.upper()
    existing = SimpleConfig.__dict__.get(attr)
    if existing is not None:
        if isinstance(existing, ConfigVar) and existing.key() == key:
            return existing            # a second import of this module (zip importer, tests)
        raise SettingsClash(f"SimpleConfig.{attr} is already bound to {existing!r}")
    var = ConfigVar(key, default=default, type_=type_, short_desc=lambda: desc, plugin=PLUGIN_NAME)
    setattr(SimpleConfig, attr, var)
    return var


# The co-signing node: whether it runs, where it listens, whom it joins first.
NODE_ENABLED = _declare("node_enabled", default=False, type_=bool,
                        desc="Run the MuSig2 co-signing node (DHT and peer sessions)")
LISTEN_HOST = _declare("listen_host", default="127.0.0.1",
                       desc="Interface the node listens on: 127.0.0.1 or 0.0.0.0")
LISTEN_PORT = _declare("listen_port", default=None,
                       desc="Port the node listens on (TCP sessions, UDP DHT); unset: the chain's")
BOOTSTRAP = _declare("bootstrap", default="",
                     desc="DHT nodes to join first: host:port,host:port")
# The endpoint strangers connect to (port forward, server address); see app/reach.py.
PUBLIC_HOST = _declare("public_host", default="",
                       desc="Public host strangers connect to (port forward, server address)")
PUBLIC_PORT = _declare("public_port", default=None, desc="Public port strangers connect to")
# "Advertise me": whether to publish, and what.
ADVERTISE = _declare("advertise", default=False, type_=bool,
                     desc="Advertise this wallet as a co-signer on the DHT")
AD_TYPES = _declare("ad_types", default="spend", desc="Advertised request types: spend,custody")
AD_MIN = _declare("ad_min_sat", default=0, desc="Smallest amount (sat) this co-signer accepts")
AD_MAX = _declare("ad_max_sat", default=None, desc="Largest amount (sat) this co-signer accepts")
AD_FEE = _declare("ad_fee_sat", default=0, desc="Fee (sat) this co-signer asks")
AD_NICK = _declare("ad_nickname", default="", desc="Nickname shown with the advertisement")
# The network path (checked by musig2_plugin.tor.policy before use; see network_settings.py).
NETWORK_MODE = _declare("network_mode", default="auto",
                        desc="How the node reaches the network: auto, direct or proxy")
PROXY = _declare("proxy", default="", desc="The plugin's own SOCKS5 proxy: [socks5:]host:port")
TOR_CONTROL = _declare("tor_control", default="",
                       desc="Tor's control port (loopback host:port) for an onion service")
TOR_CONTROL_PASSWORD = _declare("tor_control_password", default=None,
                                desc="Password of Tor's control port (else cookie authentication)")
TOR_CONTROL_COOKIE = _declare("tor_control_cookie", default=None,
                              desc="Cookie file of Tor's control port")

ALL: tuple[ConfigVar, ...] = (
    NODE_ENABLED, LISTEN_HOST, LISTEN_PORT, BOOTSTRAP, PUBLIC_HOST, PUBLIC_PORT, ADVERTISE,
    AD_TYPES, AD_MIN, AD_MAX, AD_FEE, AD_NICK, NETWORK_MODE, PROXY, TOR_CONTROL,
    TOR_CONTROL_PASSWORD, TOR_CONTROL_COOKIE)
