"""A network namespace for the Tor leak test: the only way out is the local Tor's SOCKS and
control ports, and every other packet is dropped and counted (nft named counter).

Why a namespace: "sends nothing outside the proxy" must be shown from outside the process, not
trusted from our own code.  The process under test runs in ``<ns>`` (``ip netns exec``); one veth
pair joins it to the host, with addresses from TEST-NET-2 (198.51.100.0/30, a documentation range:
nothing outside this machine is ever addressed).  The Tor client runs on the host and listens on
the veth's host end.  In the namespace, nft's output hook accepts:
- anything on ``lo`` (the process talking to itself);
- TCP to the host end on the SOCKS and control ports;
- replies on connections the host end opened (Tor forwarding onion-service traffic to the node's
  listener: those packets go back to the Tor process, nowhere else);
and counts-and-drops everything else (``counter leaked``).  IPv6 is disabled in the namespace, so
no neighbour discovery or router solicitation can be mistaken for a leak.

Root is needed; without it :class:`LeakNamespaceError` says so in one line (tests fail, never skip).
Everything is removed by :meth:`LeakNamespace.stop` (deleting the namespace deletes the veth pair
and the nft table with it), also from ``atexit`` when a test forgets.
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
from typing import Sequence

HOST_ADDR = "198.51.100.1"
NS_ADDR = "198.51.100.2"
PREFIX = 30


class LeakNamespaceError(RuntimeError):
    """The namespace cannot be built here; the message says why."""


def _run(argv: Sequence[str], *, input_text: str | None = None) -> str:
    res = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise LeakNamespaceError(f"{' '.join(argv)} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout


class LeakNamespace:
    """``ns = LeakNamespace().start(); <Tor listens on HOST_ADDR>; ns.restrict([socks, control])``;
    run the process with ``ns.argv(...)``; then ``ns.leaked() == 0``; ``ns.stop()``."""

    def __init__(self, tag: str | None = None) -> None:
        if os.geteuid() != 0:
            raise LeakNamespaceError("the leak test needs root (network namespaces and nft); "
                                     f"this is uid {os.geteuid()}")
        tag = tag or str(os.getpid())
        self.name = f"m2tor{tag}-leak"
        self.veth_host = f"m2tl{tag}h"[:15]
        self.veth_ns = f"m2tl{tag}n"[:15]
        self.allowed_ports: list[int] = []
        self._up = False

    def start(self) -> "LeakNamespace":
        atexit.register(self.stop)
        try:
            _run(["ip", "netns", "add", self.name])
            self._up = True
            _run(["ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns])
            _run(["ip", "link", "set", self.veth_ns, "netns", self.name])
            _run(["ip", "addr", "add", f"{HOST_ADDR}/{PREFIX}", "dev", self.veth_host])
            _run(["ip", "link", "set", self.veth_host, "up"])
            self.exec_checked(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            self.exec_checked(["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])
            self.exec_checked(["ip", "link", "set", "lo", "up"])
            self.exec_checked(["ip", "addr", "add", f"{NS_ADDR}/{PREFIX}", "dev", self.veth_ns])
            self.exec_checked(["ip", "link", "set", self.veth_ns, "up"])
        except BaseException:
            self.stop()
            raise
        return self

    def restrict(self, allowed_ports: Sequence[int]) -> None:
        """Install the filter: only TCP to the host end's ``allowed_ports`` (Tor's SOCKS and
        control ports) leaves; everything else is counted and dropped.  Called once Tor listens
        on the veth's host end (which exists only after start())."""
        self.allowed_ports = sorted({int(p) for p in allowed_ports})
        if not self.allowed_ports:
            raise ValueError("at least one allowed port (Tor's SOCKS port)")
        try:
            ports = ", ".join(str(p) for p in self.allowed_ports)
            ruleset = f"""
table inet m2leak {{
    counter leaked {{ }}
    chain out {{
        type filter hook output priority 0; policy accept;
        oif "lo" accept
        ip daddr {HOST_ADDR} tcp dport {{ {ports} }} accept
        ct direction reply ip daddr {HOST_ADDR} accept
        counter name leaked drop
    }}
}}
"""
            self.exec_checked(["nft", "-f", "-"], input_text=ruleset)
        except BaseException:
            self.stop()
            raise

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def exec_checked(self, argv: Sequence[str], *, input_text: str | None = None) -> str:
        return _run(self.argv(argv), input_text=input_text)

    def leaked(self) -> int:
        """Packets dropped so far (anything not to Tor's SOCKS/control ports)."""
        out = json.loads(self.exec_checked(["nft", "-j", "list", "counter", "inet", "m2leak", "leaked"]))
        for item in out.get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LeakNamespaceError("nft listed no counter 'leaked'")

    def stop(self) -> None:
        """Delete the namespace (its veth pair and nft table go with it). Idempotent."""
        if self._up:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "del", self.veth_host], capture_output=True, timeout=30)
            self._up = False

    def exists(self) -> bool:
        res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
        return any(line.split()[0] == self.name for line in res.stdout.splitlines() if line.strip())

    def __enter__(self) -> "LeakNamespace":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
