"""The standalone node: a DHT bootstrap node for one chain, without Electrum.

Run it with ``python -m musig2_plugin.node`` (or the ``musig2-node`` console script); see
docs/network.md for its settings and a systemd unit. ``StandaloneNode`` hosts pluggable
``NodeService`` objects (the relay service plugs in there) next to its DHT node.
"""
from .service import NodeService, NodeSettings, StandaloneNode

__all__ = ["NodeService", "NodeSettings", "StandaloneNode"]
