"""The plugin's network settings read from (and written to) Electrum's config, checked by the
proxy policy (musig2_plugin.tor.policy) before anything uses them.

Why at the edge: Electrum's proxy lives in its config (``proxy`` = "socks5:host:port",
``enable_proxy``, ``proxy_user``, ``proxy_password``; read through Electrum's own
``ProxySettings.from_config`` so we see exactly what Electrum's network uses).  The plugin adds
``plugins.musig2_plugin.network_mode`` (auto / direct / proxy) and ``plugins.musig2_plugin.proxy``
(its own SOCKS5 proxy).  Saving a combination that would leak is refused and changes nothing, and
so is starting the node with one (the settings may have been edited by hand).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from . import settings
from .tor import (ControlSettings, NetworkMode, NetworkPlan, PolicyError, ProxyConfigError, ProxySpec,
                         is_loopback, parse_proxy, plan_network)

if TYPE_CHECKING:
    from electrum.simple_config import SimpleConfig

# Declared as Electrum config variables in settings.py; the key names stay importable from here.
CONFIG_NETWORK_MODE = settings.NETWORK_MODE.key()      # auto | direct | proxy
CONFIG_PROXY = settings.PROXY.key()                    # [socks5:]host:port, or empty
CONFIG_TOR_CONTROL = settings.TOR_CONTROL.key()        # host:port of Tor's control port
CONFIG_TOR_CONTROL_PASSWORD = settings.TOR_CONTROL_PASSWORD.key()
CONFIG_TOR_CONTROL_COOKIE = settings.TOR_CONTROL_COOKIE.key()  # cookie file path


def electrum_proxy(config: "SimpleConfig") -> Optional[ProxySpec]:
    """Electrum's proxy when it is enabled, else None.  An enabled proxy we cannot use (SOCKS4,
    no host) raises ProxyConfigError: going direct instead would be the leak."""
    from electrum.network import ProxySettings
    settings = ProxySettings.from_config(config)
    if not settings.enabled:
        return None
    if not settings.host or not settings.port:
        raise ProxyConfigError("Electrum's proxy is enabled but has no host:port; fix it in "
                               "Electrum's network settings")
    return parse_proxy(f"{settings.mode}:{settings.host}:{settings.port}", source="electrum",
                       user=settings.user, password=settings.password)


def plugin_proxy(config: "SimpleConfig") -> Optional[ProxySpec]:
    return parse_proxy(config.MUSIG2_PROXY or "", source="plugin")


def network_plan(config: "SimpleConfig", listen_host: str, public_host: Optional[str] = None,
                 *, mode: object = None, proxy: object = None) -> NetworkPlan:
    """The plan for the current settings (or for ``mode``/``proxy`` about to be saved)."""
    return plan_network(
        electrum_proxy=electrum_proxy(config),
        plugin_proxy=plugin_proxy(config) if proxy is None else parse_proxy(proxy, source="plugin"),
        mode=NetworkMode.parse(config.MUSIG2_NETWORK_MODE if mode is None else mode),
        listen_host=listen_host, public_host=public_host)


def save_network_settings(config: "SimpleConfig", listen_host: str,
                          public_host: Optional[str] = None, *, mode: object = None,
                          proxy: object = None, control: object = None) -> NetworkPlan:
    """Check the new settings with the policy and save them; a refusal saves nothing."""
    plan = network_plan(config, listen_host, public_host, mode=mode, proxy=proxy)
    if control is not None:
        parsed = parse_tor_control(control)
        config.set_key(CONFIG_TOR_CONTROL, "" if parsed is None else f"{parsed.host}:{parsed.port}")
    if mode is not None:
        config.set_key(CONFIG_NETWORK_MODE, plan.mode.value)
    if proxy is not None:
        spec = parse_proxy(proxy, source="plugin")
        config.set_key(CONFIG_PROXY, "" if spec is None else f"socks5:{spec.host}:{spec.port}")
    return plan


def tor_control(config: "SimpleConfig") -> Optional[ControlSettings]:
    """The Tor control port to create our onion service on, or None when none is set.
    Authentication: the password when set, else the cookie (file from the settings or from Tor)."""
    return parse_tor_control(config.MUSIG2_TOR_CONTROL or "",
                             config.MUSIG2_TOR_CONTROL_PASSWORD,
                             config.MUSIG2_TOR_CONTROL_COOKIE)


def parse_tor_control(text: object, password: object = None,
                      cookie: object = None) -> Optional[ControlSettings]:
    """``host:port`` (loopback only) -> ControlSettings; empty or "none" -> None."""
    text = str(text or "").strip()
    if not text or text.lower() == "none":
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ProxyConfigError(f"Tor control port {text!r} is not host:port")
    proxy = parse_proxy(f"socks5:{host}:{port}", source="tor control")   # same host/port checks
    if not is_loopback(proxy.host):
        raise ProxyConfigError(f"Tor control port {text!r} must be on this machine (loopback): "
                               "its cookie and password would otherwise cross the network")
    return ControlSettings(proxy.host, proxy.port, password=str(password) if password else None,
                           cookie_file=str(cookie) if cookie else None)


def describe(config: "SimpleConfig", listen_host: str, public_host: Optional[str] = None) -> dict:
    """For the status command and the settings dialog: the plan, or why it is refused."""
    try:
        plan = network_plan(config, listen_host, public_host)
        control = tor_control(config)
    except PolicyError as exc:
        return {"mode": str(config.MUSIG2_NETWORK_MODE), "refused": str(exc)}
    return {"mode": plan.mode.value, "path": plan.describe(),
            "reachability": "onion" if control is not None else plan.reachability,
            "proxy": None if plan.proxy is None else plan.proxy.describe(),
            "udp_dht": plan.udp_dht,
            "tor_control": None if control is None else
            f"{control.host}:{control.port} ({'password' if control.password else 'cookie'})"}
