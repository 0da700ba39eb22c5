"""A small internet on one machine: Linux network namespaces, veth pairs, NAT routers with nft.

Why: co-signers sit on other machines, most behind home routers. Loopback tests cannot show
that a node advertises the right address, that dial-back tells a reachable node from an
unreachable one, or that relays carry what a NAT blocks. Here every "machine" is a network
namespace, so real sockets cross real (kernel) routing and NAT, without touching the host's own
network: every interface is created directly inside a namespace of ours, and every nft table
lives in a router namespace.

Topology (``Internet``)::

    public segment 203.0.113.0/24 (a documentation range, never RFC 1918): a bridge in the
    "net" namespace; public hosts (the chain, bootstrap/relay nodes) and the routers' WAN sides
    are plugged into it.

    each home: a router namespace (WAN 203.0.113.x, LAN 192.168.N.1/24 on a bridge) and one or
    more host namespaces 192.168.N.10, .11, ... behind it. The router's NAT kind:
      * ``FORWARD``:  masquerade + a port forward (TCP and UDP) to one host: reachable.
      * ``MASQUERADE``: plain masquerade, inbound refused: unreachable.
      * ``RANDOM``:   masquerade with random source ports (a new mapping per connection, as a
                      symmetric NAT does): unreachable, and what peers see is no usable port.

Kernel ``netem`` is not available here; delays are injected in user space (the delaying proxy of
tests/harness), never with ``tc``.

Clean-up: ``Internet.close()`` (also ``__exit__``, a pytest finalizer, Ctrl-C, SIGTERM through
:mod:`tests.harness.procs`, interpreter exit) kills every process still running in our
namespaces and deletes them, which removes their veths and nft tables with them. Namespace
names carry the owner's pid (``m2n<pid>-<role>``): a later run deletes those of owners that
died without cleaning up (SIGKILL). Needs root; without it :class:`NetnsUnavailable` says so
in one line (tests then fail with it, they never skip).
"""
from __future__ import annotations

import contextlib
import ctypes
import enum
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Mapping, Sequence

from . import procs

PREFIX = "m2n"
PUBLIC_NET = ipaddress.ip_network("203.0.113.0/24")
NFT_TABLE = "m2nat"
SETUP_HINT = "run scripts/bootstrap.sh as root (scripts/bootstrap.d/60-netns.sh installs nftables)"


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be built here (no root, no ip/nft); the one-line message says why."""


class NetnsError(RuntimeError):
    """A command building or driving the test network failed; names the command and its output."""


class NatKind(str, enum.Enum):
    FORWARD = "port-forward"
    MASQUERADE = "masquerade"
    RANDOM = "random-port"

    @property
    def reachable(self) -> bool:
        return self is NatKind.FORWARD


def check_available() -> None:
    """Raise :class:`NetnsUnavailable` with one clear line unless namespaces can be built."""
    if os.geteuid() != 0:
        raise NetnsUnavailable(f"network namespaces need root and this is uid {os.geteuid()}; "
                               f"{SETUP_HINT}")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise NetnsUnavailable(f"'{tool}' not found; {SETUP_HINT}")


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
         input: str | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and res.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} exited {res.returncode}: "
                         f"{(res.stderr or res.stdout).strip()}")
    return res


def list_namespaces() -> list[str]:
    """Names of every network namespace on the machine (``ip netns list``)."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _delete_namespace(ns: str) -> None:
    """Kill whatever still runs in ``ns``, then delete it (its veths and nft tables go with it)."""
    for _ in range(3):
        pids = namespace_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    _run(["ip", "netns", "del", ns], check=False)


def sweep_orphans() -> list[str]:
    """Delete the namespaces of harness runs whose owner process is gone; returns their names."""
    swept = []
    for ns in list_namespaces():
        if not ns.startswith(PREFIX):
            continue
        owner = ns[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not procs.is_alive(int(owner)):
            _delete_namespace(ns)
            swept.append(ns)
    return swept


@dataclass
class Host:
    """One machine: a namespace and its address (public or behind its home's router)."""

    name: str
    ns: str
    ip: str
    home: "Home | None" = None

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *map(str, argv)]

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess:
        return _run(self.argv(argv), check=check, timeout=timeout, input=input)

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None,
              log: IO[bytes] | None = None) -> subprocess.Popen:
        """Start a long-running process inside the namespace, registered with ``procs``."""
        return procs.spawn(f"{self.name}:{name}", self.argv(argv), env=env, cwd=cwd, log=log)

    @property
    def nat(self) -> "NatKind | None":
        return None if self.home is None else self.home.kind


@dataclass
class Home:
    """A home network: a NAT router and the hosts behind it."""

    name: str
    kind: NatKind
    router: Host                      # its ``ip`` is the router's public (WAN) address
    lan: ipaddress.IPv4Network
    hosts: list[Host] = field(default_factory=list)
    forwards: list[tuple[str, int, str]] = field(default_factory=list)   # (proto, port, host ip)

    @property
    def public_ip(self) -> str:
        return self.router.ip


class Internet:
    """The test internet; build with ``add_public`` / ``add_home``, then ``close()``.

    Usage::

        with Internet() as net:
            relay = net.add_public("relay1")
            home = net.add_home("fwd", NatKind.FORWARD, hosts=["alice"], forward_ports=[7800])
            alice = home.hosts[0]
            alice.spawn("node", [sys.executable, "-m", "musig2_plugin.node", ...])
    """

    def __init__(self) -> None:
        check_available()
        sweep_orphans()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.namespaces: list[str] = []
        self.public: dict[str, Host] = {}
        self.homes: dict[str, Home] = {}
        self._next_public = 10
        self._next_router = 100
        self._next_lan = 1
        self._closed = False
        self._lock = threading.RLock()
        procs.add_cleanup(self.close)
        try:
            self.net = self._new_ns("net")
            _run(["ip", "-n", self.net, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.net, "link", "set", "br0", "up"])
        except BaseException:
            self.close()
            raise

    # -- building ------------------------------------------------------------------------
    def _new_ns(self, role: str) -> str:
        ns = f"{self.tag}-{role}"
        with self._lock:
            if self._closed:
                raise NetnsError("the test internet is closed")
            _run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns

    def _plug_public(self, ns: str, ifname: str, short: str, ip: str) -> None:
        """A veth from ``ns`` (``ifname``) to the public bridge, address ``ip``/24."""
        peer = f"p-{short}"[:15]
        _run(["ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer,
              "netns", self.net])
        _run(["ip", "-n", self.net, "link", "set", peer, "master", "br0", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{ip}/{PUBLIC_NET.prefixlen}", "dev", ifname])
        _run(["ip", "-n", ns, "link", "set", ifname, "up"])

    def _public_ip(self, counter_attr: str) -> str:
        n = getattr(self, counter_attr)
        setattr(self, counter_attr, n + 1)
        return str(PUBLIC_NET.network_address + n)

    def add_public(self, name: str) -> Host:
        """A machine on the public segment (203.0.113.10, .11, ...)."""
        self._check_name(name)
        ip = self._public_ip("_next_public")
        ns = self._new_ns(name)
        self._plug_public(ns, "eth0", name, ip)
        host = Host(name, ns, ip)
        self.public[name] = host
        return host

    def add_home(self, name: str, kind: NatKind, *, hosts: Iterable[str],
                 forward_ports: Iterable[int] = (), forward_to: int = 0) -> Home:
        """A home behind its own NAT router of ``kind`` with one namespace per name in ``hosts``.

        ``forward_ports`` (FORWARD only): TCP and UDP ports the router forwards to host number
        ``forward_to``, on the same port number.
        """
        self._check_name(name)
        names = list(hosts)
        if not names:
            raise ValueError("a home needs at least one host")
        for h in names:
            self._check_name(h)
        ports = list(forward_ports)
        if ports and kind is not NatKind.FORWARD:
            raise ValueError("only a FORWARD home forwards ports")
        if kind is NatKind.FORWARD and not ports:
            raise ValueError("a FORWARD home needs at least one forwarded port")
        lan = ipaddress.ip_network(f"192.168.{self._next_lan}.0/24")
        self._next_lan += 1
        wan_ip = self._public_ip("_next_router")
        rns = self._new_ns(f"r-{name}")
        self._plug_public(rns, "wan", f"r{name}", wan_ip)
        gw = str(lan.network_address + 1)
        _run(["ip", "-n", rns, "link", "add", "lan", "type", "bridge"])
        _run(["ip", "-n", rns, "addr", "add", f"{gw}/{lan.prefixlen}", "dev", "lan"])
        _run(["ip", "-n", rns, "link", "set", "lan", "up"])
        _run(["ip", "netns", "exec", rns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        home = Home(name, kind, Host(f"router-{name}", rns, wan_ip), lan)
        for i, hname in enumerate(names):
            hip = str(lan.network_address + 10 + i)
            hns = self._new_ns(hname)
            port = f"l{i}"
            _run(["ip", "link", "add", "eth0", "netns", hns, "type", "veth", "peer", "name", port,
                  "netns", rns])
            _run(["ip", "-n", rns, "link", "set", port, "master", "lan", "up"])
            _run(["ip", "-n", hns, "addr", "add", f"{hip}/{lan.prefixlen}", "dev", "eth0"])
            _run(["ip", "-n", hns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", hns, "route", "add", "default", "via", gw])
            home.hosts.append(Host(hname, hns, hip, home))
        if ports:
            target = home.hosts[forward_to].ip
            home.forwards = [(proto, p, target) for p in ports for proto in ("tcp", "udp")]
        _run(["ip", "netns", "exec", rns, "nft", "-f", "-"], input=self._nft_rules(home))
        self.homes[name] = home
        return home

    @staticmethod
    def _nft_rules(home: Home) -> str:
        """The router's NAT: masquerade out of ``wan`` (random ports for RANDOM), forwards in,
        and a forward filter that drops new inbound connections that were not forwarded."""
        masq = "masquerade random" if home.kind is NatKind.RANDOM else "masquerade"
        dnat = "\n".join(f'        iifname "wan" {proto} dport {port} dnat to {ip}:{port}'
                         for proto, port, ip in home.forwards)
        return f"""table ip {NFT_TABLE} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
{dnat}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" {masq}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan" accept
        ct status dnat accept
    }}
}}
"""

    def _check_name(self, name: str) -> None:
        if not name or len(name) > 10 or not name.replace("-", "").isalnum():
            raise ValueError(f"bad name {name!r}: 1-10 letters, digits or '-'")
        taken = {h for h in self.public} | {h.name for home in self.homes.values()
                                            for h in home.hosts} | set(self.homes)
        if name in taken:
            raise ValueError(f"name {name!r} already used")

    # -- looking around ------------------------------------------------------------------
    def host(self, name: str) -> Host:
        if name in self.public:
            return self.public[name]
        for home in self.homes.values():
            for h in home.hosts:
                if h.name == name:
                    return h
        raise KeyError(name)

    def all_hosts(self) -> list[Host]:
        return list(self.public.values()) + [h for home in self.homes.values() for h in home.hosts]

    def describe(self) -> str:
        """One line per machine: where it sits and how it is reached (for demos and logs)."""
        lines = [f"{h.name:>10}  public {h.ip}" for h in self.public.values()]
        for home in self.homes.values():
            for h in home.hosts:
                lines.append(f"{h.name:>10}  {h.ip} behind {home.name} ({home.kind.value}, "
                             f"public {home.public_ip})")
        return "\n".join(lines)

    # -- tearing down --------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process in our namespaces and delete them. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            namespaces = list(reversed(self.namespaces))
        for ns in namespaces:
            _delete_namespace(ns)
        procs.remove_cleanup(self.close)

    def __enter__(self) -> "Internet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(ns: str):
    """Run the calling thread inside namespace ``ns`` for the ``with`` block.

    Why: the harness drives some machines (the chain: bitcoind's RPC, ElectrumX) with plain
    sockets from the test process. ``setns`` moves only this thread; processes and threads it
    starts meanwhile are born there, and sockets opened there stay there afterwards.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as own, open(f"/var/run/netns/{ns}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise NetnsError(f"setns into {ns}: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            if libc.setns(own.fileno(), CLONE_NEWNET) != 0:
                raise NetnsError(f"setns back from {ns}: {os.strerror(ctypes.get_errno())}")


def probe_script() -> Path:
    """The tiny TCP/UDP probe the NAT tests run inside namespaces (tests/harness/netprobe.py)."""
    return Path(__file__).with_name("netprobe.py")


def python_argv(*args: str) -> list[str]:
    """Run this interpreter (the project's venv) with ``args``; for ``Host.run``/``spawn``."""
    return [sys.executable, *args]
