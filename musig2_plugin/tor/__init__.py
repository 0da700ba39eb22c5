"""Tor support: the proxy policy (nothing outside the configured proxy), the control-port client
and ephemeral onion services (docs/tor.md).  Nothing here imports Electrum."""
from .policy import (LeakRefused, NetworkMode, NetworkPlan, PolicyError, ProxyConfigError,
                     ProxySpec, is_loopback, parse_proxy, plan_network)
from .socks import socks_connector
from .control import ControlSettings, TorAuthError, TorControl, TorControlError
from .onion import OnionService
