"""Command line of the standalone node (``python -m musig2_plugin.node`` / ``musig2-node``).

Logs go to stdout (a service manager collects them); SIGTERM or SIGINT stops the
node cleanly (services, then the DHT, whose contacts are remembered) with exit
status 0. Bad arguments or a node that cannot start print ONE line to stderr
and exit 2 (arguments) or 1 (start-up), so a failing unit says why in one line.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from ..dht import DhtConfig
from ..foundation.chain import KNOWN_CHAINS, UnknownChain, chain_named
from ..foundation.errors import Musig2Error
from .service import NodeSettings, StandaloneNode

PROG = "musig2-node"


class ArgumentError(Musig2Error):
    """A bad command line; its message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise ArgumentError(message)


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ArgumentError(f"bootstrap node {text!r}: {host!r} is not an IPv6 address") \
                from None
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 \
            or any(c.isspace() for c in host):
        raise ArgumentError(f"bootstrap node {text!r} is not host:port")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="MuSig2 plugin standalone DHT node (bootstrap) for one chain.")
    p.add_argument("--chain", default="mainnet",
                   help=f"chain to serve: {', '.join(KNOWN_CHAINS)} (default mainnet)")
    p.add_argument("--listen", default="0.0.0.0", metavar="HOST",
                   help="address to listen on (default 0.0.0.0: all interfaces)")
    p.add_argument("--port", type=int, default=None,
                   help="UDP port (default: the chain's default port, see docs/network.md)")
    p.add_argument("--bootstrap", action="append", default=[], metavar="HOST:PORT",
                   help="a node to join through (repeat, or comma-separate)")
    p.add_argument("--no-default-bootstrap", action="store_true",
                   help="do not use the chain's shipped bootstrap list")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where remembered peers are kept (default ~/.musig2-node/<chain>)")
    p.add_argument("--rate-limit-by", choices=("host", "address"), default="host",
                   help="DHT rate budgets per IP (default) or per IP and port (test networks "
                        "where many nodes share one IP)")
    p.add_argument("--no-relay", action="store_true",
                   help="do not relay for unreachable wallets (default: relay, on TCP at the "
                        "same port, bounded; see docs/network.md)")
    p.add_argument("--status-interval", type=float, default=600.0, metavar="SECONDS",
                   help="log a status line this often (default 600)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def settings_from_args(argv: Sequence[str]) -> tuple[NodeSettings, str]:
    args = build_parser().parse_args(list(argv))
    try:
        chain = chain_named(args.chain)
    except UnknownChain as exc:
        raise ArgumentError(str(exc)) from None
    try:
        ipaddress.ip_address(args.listen)
    except ValueError:
        raise ArgumentError(f"--listen {args.listen!r} is not an IP address") from None
    if args.port is not None and not 0 <= args.port < 65536:
        raise ArgumentError(f"--port {args.port} is not 0..65535")
    if not args.status_interval > 0:
        raise ArgumentError("--status-interval must be positive")
    boot = [parse_address(part) for item in args.bootstrap for part in item.split(",")
            if part.strip()]
    if len(boot) > 64:
        raise ArgumentError("at most 64 bootstrap nodes")
    data_dir = Path(args.data_dir) if args.data_dir else \
        Path(os.path.expanduser("~")) / ".musig2-node" / chain.name
    return NodeSettings(chain=chain, listen_host=args.listen, port=args.port, bootstrap=boot,
                        use_default_bootstrap=not args.no_default_bootstrap, data_dir=data_dir,
                        dht=DhtConfig(rate_limit_by=args.rate_limit_by),
                        status_interval=args.status_interval,
                        relay=not args.no_relay), args.log_level


async def run(settings: NodeSettings, services=()) -> int:
    """Run until SIGTERM/SIGINT; 0 after a clean stop, 1 if the node cannot start."""
    node = StandaloneNode(settings, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await node.start()
        except OSError as exc:
            print(f"{PROG}: cannot listen on {settings.listen_host}:{settings.listen_port}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
        await stop.wait()
        logging.getLogger("musig2_plugin.node").info("stopping (signal received)")
        await node.stop()
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings, level = settings_from_args(sys.argv[1:] if argv is None else argv)
    except ArgumentError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:           # --help
        return int(exc.code or 0)
    logging.basicConfig(stream=sys.stdout, level=getattr(logging, level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .relay_service import RelayNodeService
    return asyncio.run(run(settings, [RelayNodeService()] if settings.relay else []))
