"""A private Tor network on 127.0.0.1 for the tests, the examples and the benchmarks.

Why our own network: the plugin's Tor support (issue 13) must be tested end to end — SOCKS
clients, control ports, onion services — and nothing may touch the real Tor network.  Debian's
``tor`` package (with ``tor-gencert``) runs every role; ``TestingTorNetwork 1`` lets relays on
127.0.0.1 build circuits among themselves and shortens every timer.  Chutney (the Tor Project's
tool) shows the shape; this is a small one of our own.

The network: ``authorities`` directory authorities (each also a relay), ``relays`` middle relays
and ``exits`` exit relays whose exit policy allows 127.0.0.0/8 only (so a Tor client can reach a
clearnet peer on loopback, and nothing else).  Every torrc names our authorities and only them
(``DirAuthority`` lines; ``TestingTorNetwork`` refuses to start with the default ones, and
``UseDefaultFallbackDirs 0`` keeps the built-in fallback directories out): see
:func:`foreign_authority_lines`, which a test runs over every torrc.

Start-up cost: a Tor network is up when the authorities have voted a consensus that lists every
relay and a client has bootstrapped through it.  The first votes are held at the shortest
intervals Tor accepts in testing mode (``TestingV3AuthInitialVotingInterval`` and friends), and
:attr:`PrivateTorNetwork.startup_seconds` records the time measured (docs/tor.md has figures).

Every process goes through :mod:`tests.harness.procs`, so a failed test, Ctrl-C or SIGTERM leaves
no ``tor`` running; :meth:`PrivateTorNetwork.stop` stops them by pid and removes the directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import procs

LOOPBACK = "127.0.0.1"
SETUP_SCRIPT = "scripts/bootstrap.d/50-tor.sh"

#: Shortest voting schedule tor 0.4.9 accepts with TestingTorNetwork (checked with
#: ``tor --verify-config``): the initial interval 5 s ("4 is insanely low"), vote and dist delays 2 s
#: each, and a later interval of more than twice their sum (10 s).
VOTING_OPTIONS = (
    ("TestingV3AuthInitialVotingInterval", "5"),
    ("TestingV3AuthInitialVoteDelay", "2"),
    ("TestingV3AuthInitialDistDelay", "2"),
    ("V3AuthVotingInterval", "10"),
    ("V3AuthVoteDelay", "2"),
    ("V3AuthDistDelay", "2"),
    ("TestingV3AuthVotingStartOffset", "0"),
    ("V3AuthNIntervalsValid", "2"),
)


class TorNetError(RuntimeError):
    """The private Tor network cannot be prepared, started or reached; the message says why."""


def tor_binaries() -> tuple[str, str]:
    """Paths of ``tor`` and ``tor-gencert``; raises with the set-up step's name when missing."""
    tor = shutil.which("tor") or ("/usr/sbin/tor" if os.access("/usr/sbin/tor", os.X_OK) else None)
    gencert = shutil.which("tor-gencert")
    if not tor or not gencert:
        raise TorNetError(
            f"tor set-up: Debian's tor package is not installed (tor={tor}, tor-gencert={gencert}); "
            f"run {SETUP_SCRIPT} (or scripts/bootstrap.sh)"
        )
    return tor, gencert


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (tor binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for(probe: Callable[[], object], *, timeout: float, what: str,
             alive: Callable[[], str | None] | None = None, interval: float = 0.2) -> object:
    """Poll ``probe`` until truthy; fail at once with ``alive()``'s text if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            dead = alive()
            if dead:
                raise TorNetError(f"while waiting for {what}: {dead}")
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TorNetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def foreign_authority_lines(torrc_text: str, ours: Iterable[str]) -> list[str]:
    """Lines of a torrc that could make tor talk to a directory outside our network.

    Allowed: ``DirAuthority`` lines equal to one of ``ours``.  Refused: any other DirAuthority,
    any ``AlternateDirAuthority``/``AlternateBridgeAuthority``/``FallbackDir``/``Bridge`` line,
    ``UseDefaultFallbackDirs`` other than 0, and a missing ``UseDefaultFallbackDirs 0`` or
    ``TestingTorNetwork 1`` (reported as the pseudo-line ``missing: ...``).
    """
    allowed = {line.strip() for line in ours}
    bad: list[str] = []
    seen_fallback_off = seen_testing = False
    for raw in torrc_text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = line.split(None, 1)[0].lower()
        if key == "dirauthority" and line not in allowed:
            bad.append(line)
        elif key in ("alternatedirauthority", "alternatebridgeauthority", "fallbackdir", "bridge"):
            bad.append(line)
        elif key == "usedefaultfallbackdirs":
            if line.split()[1:] == ["0"]:
                seen_fallback_off = True
            else:
                bad.append(line)
        elif key == "testingtornetwork":
            seen_testing = line.split()[1:] == ["1"]
    if not seen_fallback_off:
        bad.append("missing: UseDefaultFallbackDirs 0")
    if not seen_testing:
        bad.append("missing: TestingTorNetwork 1")
    if not any(line.split(None, 1)[0].lower() == "dirauthority"
               for line in torrc_text.splitlines() if line.strip()):
        bad.append("missing: DirAuthority")
    return bad


@dataclass
class TorNode:
    """One tor process of the network (authority, relay, exit or client)."""

    name: str
    role: str
    datadir: Path
    or_port: int = 0
    dir_port: int = 0
    socks_port: int = 0
    control_port: int = 0
    fingerprint: str = ""
    v3ident: str = ""
    control_password: str | None = None
    listen_host: str = LOOPBACK
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def torrc(self) -> Path:
        return self.datadir / "torrc"

    @property
    def log(self) -> Path:
        return self.datadir / "notice.log"

    @property
    def cookie_file(self) -> Path:
        return self.datadir / "control_auth_cookie"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        try:
            return (self.datadir / "stdout.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def died(self) -> str | None:
        if self.proc is None or self.proc.poll() is None:
            return None
        tail = "\n".join((self.log_text() or self.stdout_text()).splitlines()[-15:])
        return f"tor {self.name} exited with status {self.proc.returncode}:\n{tail}"

    def bootstrapped(self) -> bool:
        return "Bootstrapped 100%" in self.log_text()


class PrivateTorNetwork:
    """Directory authorities, relays and exits on 127.0.0.1; clients on demand.

    ``start()`` returns once a consensus lists every relay and a probe client has bootstrapped;
    ``add_client()`` runs further clients (SOCKS + control port with cookie or password auth);
    ``stop()`` stops every tor by pid and removes the directory.  Also a context manager.
    """

    def __init__(self, authorities: int = 3, relays: int = 2, exits: int = 2,
                 base_dir: str | os.PathLike[str] | None = None, keep_dir: bool = False) -> None:
        if authorities < 3:
            raise ValueError("a consensus needs at least 3 authorities here (majority of signers)")
        if relays + exits + authorities < 6:
            raise ValueError("onion services need at least 6 relays (4-hop service circuits)")
        self.n_authorities = authorities
        self.n_relays = relays
        self.n_exits = exits
        self.keep_dir = keep_dir
        self.dir = Path(tempfile.mkdtemp(prefix="musig2-tornet-", dir=base_dir))
        procs.track_dir(self.dir, keep=keep_dir)
        self.tor, self.gencert = tor_binaries()
        self.nodes: list[TorNode] = []
        self.authority_lines: list[str] = []
        self.startup_seconds: float | None = None
        self._started = False

    # --------------------------------------------------------------------------------------
    # Building the configuration

    def _node(self, name: str, role: str) -> TorNode:
        datadir = self.dir / name
        datadir.mkdir(mode=0o700)
        return TorNode(name=name, role=role, datadir=datadir)

    def _common(self, node: TorNode) -> list[str]:
        return [
            "TestingTorNetwork 1",
            "UseDefaultFallbackDirs 0",
            f"DataDirectory {node.datadir}",
            f"PidFile {node.datadir}/pid",
            f"Log notice file {node.log}",
            "RunAsDaemon 0",
            "SafeLogging 0",
            "ShutdownWaitLength 0",
            "AvoidDiskWrites 1",
            "ClientUseIPv6 0",
            "ConnLimit 60",
            *self.authority_lines,
        ]

    def _gen_authority_keys(self, node: TorNode) -> None:
        keys = node.datadir / "keys"
        keys.mkdir(mode=0o700)
        subprocess.run(
            [self.gencert, "--create-identity-key", "-m", "12", "-a", f"{LOOPBACK}:{node.dir_port}",
             "-i", str(keys / "authority_identity_key"), "-s", str(keys / "authority_signing_key"),
             "-c", str(keys / "authority_certificate"), "--passphrase-fd", "0"],
            input=b"\n", capture_output=True, check=True, timeout=60,
        )
        cert = (keys / "authority_certificate").read_text()
        match = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M)
        if not match:
            raise TorNetError(f"tor-gencert wrote no fingerprint for {node.name}")
        node.v3ident = match.group(1)

    def _relay_fingerprint(self, node: TorNode) -> None:
        out = subprocess.run(
            [self.tor, "--list-fingerprint", "--DataDirectory", str(node.datadir),
             "--ORPort", f"{LOOPBACK}:{node.or_port}", "--Nickname", node.name,
             "--Address", LOOPBACK, "--DisableNetwork", "1", "-f", str(self._empty()),
             "--defaults-torrc", str(self._empty()),
             "--Log", "err stderr"],
            capture_output=True, text=True, check=False, timeout=60,
        )
        match = re.search(rf"^{node.name} ((?:[0-9A-F]{{4}} ?){{10}})$", out.stdout, re.M)
        if not match:
            raise TorNetError(f"tor --list-fingerprint failed for {node.name}: {out.stdout}{out.stderr}")
        node.fingerprint = match.group(1).replace(" ", "")

    def _relay_lines(self, node: TorNode) -> list[str]:
        lines = [
            f"Nickname {node.name}",
            f"Address {LOOPBACK}",
            f"ORPort {LOOPBACK}:{node.or_port}",
            f"DirPort {LOOPBACK}:{node.dir_port}",
            "SocksPort 0",
            "AssumeReachable 1",
            "AddressDisableIPv6 1",
            f"ContactInfo {node.name}@tornet.invalid",
        ]
        if node.role == "exit":
            # Exits reach loopback only: a clearnet peer of the tests, never anything outside.
            lines += ["ExitRelay 1", "ExitPolicyRejectPrivate 0", "ExitPolicyRejectLocalInterfaces 0",
                      f"ExitPolicy accept {LOOPBACK}/8:*", "ExitPolicy reject *:*"]
        else:
            lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
        if node.role == "authority":
            lines += [
                "AuthoritativeDirectory 1",
                "V3AuthoritativeDirectory 1",
                "TestingDirAuthVoteGuard *",
                "TestingDirAuthVoteExit *",
                "TestingDirAuthVoteHSDir *",
                "TestingMinExitFlagThreshold 0",
                *(f"{k} {v}" for k, v in VOTING_OPTIONS),
            ]
        return lines

    def _empty(self) -> Path:
        """An empty file: tor refuses /dev/null as a configuration file, and the defaults torrc
        must be empty so that Debian's /usr/share/tor/tor-service-defaults-torrc adds nothing."""
        path = self.dir / "empty-torrc"
        if not path.exists():
            path.write_text("")
        return path

    def _write_torrc(self, node: TorNode, lines: Sequence[str]) -> None:
        """Write a torrc, refusing (before any tor starts with it) one that could reach a
        directory outside our network: every process of every test is checked, not a sample."""
        text = "\n".join(lines) + "\n"
        bad = foreign_authority_lines(text, self.authority_lines)
        if bad:
            raise TorNetError(f"refusing to start tor {node.name}: its torrc could reach the real "
                              f"Tor network ({'; '.join(bad)})")
        node.torrc.write_text(text)

    # --------------------------------------------------------------------------------------
    # Running

    def _spawn(self, node: TorNode) -> None:
        # Early errors (a refused option) go to stdout before the log file is opened.
        with open(node.datadir / "stdout.log", "ab") as out:
            node.proc = procs.spawn(f"tor-{node.name}", [self.tor, "-f", str(node.torrc),
                                                         "--defaults-torrc", str(self._empty())], log=out)
        self.nodes.append(node)

    def _dead(self) -> str | None:
        for node in self.nodes:
            reason = node.died()
            if reason:
                return reason
        return None

    def relays(self) -> list[TorNode]:
        return [n for n in self.nodes if n.role in ("authority", "relay", "exit")]

    def clients(self) -> list[TorNode]:
        return [n for n in self.nodes if n.role == "client"]

    def _consensus_relays(self) -> set[str]:
        """Fingerprints (hex) of the relays in the consensus the first authority serves."""
        path = self.nodes[0].datadir / "cached-consensus"
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return set()
        import base64
        found = set()
        for line in text.splitlines():
            if line.startswith("r "):
                ident = line.split()[2]
                found.add(base64.b64decode(ident + "=" * (-len(ident) % 4)).hex().upper())
        return found

    def start(self, timeout: float = 180.0) -> "PrivateTorNetwork":
        """Generate keys, start every relay, wait for a full consensus and a bootstrapped client."""
        if self._started:
            return self
        self._started = True
        began = time.monotonic()
        try:
            roles = (["authority"] * self.n_authorities + ["relay"] * self.n_relays
                     + ["exit"] * self.n_exits)
            counters: dict[str, int] = {}
            planned: list[TorNode] = []
            for role in roles:
                counters[role] = counters.get(role, -1) + 1
                node = self._node(f"{role[:4]}{counters[role]}", role)
                node.or_port, node.dir_port = free_port(), free_port()
                if role == "authority":
                    self._gen_authority_keys(node)
                self._relay_fingerprint(node)
                planned.append(node)
            self.authority_lines = [
                f"DirAuthority {n.name} orport={n.or_port} no-v2 v3ident={n.v3ident} "
                f"{LOOPBACK}:{n.dir_port} {n.fingerprint}"
                for n in planned if n.role == "authority"
            ]
            for node in planned:
                self._write_torrc(node, self._common(node) + self._relay_lines(node))
                self._spawn(node)
            want = {n.fingerprint for n in planned}
            wait_for(lambda: want <= self._consensus_relays(), timeout=timeout,
                     what="a consensus listing every relay", alive=self._dead)
            probe = self.add_client("probe", timeout=max(10.0, timeout - (time.monotonic() - began)))
            self.stop_node(probe)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def add_client(self, name: str, *, control: str | None = "cookie", password: str | None = None,
                   timeout: float = 120.0, extra: Sequence[str] = (),
                   listen_host: str = LOOPBACK) -> TorNode:
        """Run a Tor client with a SOCKS port and (``control`` = "cookie" / "password" / None) a
        control port on ``listen_host`` (the host end of a test namespace's veth, for a process
        shut in there); return once it has bootstrapped 100%."""
        if control not in ("cookie", "password", None):
            raise ValueError(f"control must be 'cookie', 'password' or None, not {control!r}")
        node = self._node(f"client-{name}", "client")
        node.listen_host = listen_host
        node.socks_port = free_port()
        # Full descriptors: a microdescriptor's exit-policy summary covers public addresses only,
        # so with microdescriptors no exit would look usable for our loopback destinations.
        lines = self._common(node) + [f"SocksPort {listen_host}:{node.socks_port}", "ORPort 0",
                                      "DirPort 0", "UseMicrodescriptors 0"]
        if control is not None:
            node.control_port = free_port()
            lines.append(f"ControlPort {listen_host}:{node.control_port}")
            if control == "cookie":
                lines += ["CookieAuthentication 1", f"CookieAuthFile {node.cookie_file}"]
            else:
                node.control_password = password or hashlib.sha256(os.urandom(16)).hexdigest()[:24]
                hashed = subprocess.run([self.tor, "--quiet", "--hash-password", node.control_password],
                                        capture_output=True, text=True, check=True, timeout=30)
                lines.append(f"HashedControlPassword {hashed.stdout.strip().splitlines()[-1]}")
        lines += list(extra)
        self._write_torrc(node, lines)
        self._spawn(node)
        wait_for(node.bootstrapped, timeout=timeout, what=f"tor client {name} to bootstrap",
                 alive=node.died)
        return node

    def stop_node(self, node: TorNode) -> None:
        if node.proc is not None:
            procs.stop(node.proc, timeout=5)

    def pids(self) -> list[int]:
        return [n.proc.pid for n in self.nodes if n.proc is not None]

    def torrcs(self) -> list[Path]:
        return [n.torrc for n in self.nodes]

    def stop(self) -> None:
        """Stop every tor of this network (clients first), then remove its directory."""
        for node in reversed(self.nodes):
            self.stop_node(node)
        procs.remove_dir(self.dir)

    def __enter__(self) -> "PrivateTorNetwork":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------
# Small synchronous clients for the harness's own checks (the plugin has its own, asynchronous ones)


def socks5_connect(socks_port: int, host: str, port: int, timeout: float = 60.0) -> socket.socket:
    """A TCP stream to ``host:port`` through the SOCKS5 proxy on 127.0.0.1:``socks_port``.

    The host name goes to the proxy unresolved (ATYP 3), as an onion address must.
    """
    sock = socket.create_connection((LOOPBACK, socks_port), timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x00")
        if _recv_exact(sock, 2) != b"\x05\x00":
            raise TorNetError("SOCKS5 proxy refused the no-authentication method")
        name = host.encode("ascii")
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
        head = _recv_exact(sock, 4)
        if head[1] != 0:
            raise TorNetError(f"SOCKS5 connect to {host}:{port} failed with reply code {head[1]}")
        atyp = head[3]
        length = {1: 4, 4: 16}.get(atyp) or _recv_exact(sock, 1)[0]
        _recv_exact(sock, length + 2)
        return sock
    except BaseException:
        sock.close()
        raise


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise TorNetError("connection closed during the SOCKS5 handshake")
        data += chunk
    return data


def control_session(node: TorNode, commands: Sequence[str], *, auth: str = "cookie",
                    password: str | None = None, cookie: bytes | None = None,
                    timeout: float = 30.0) -> list[tuple[str, list[str]]]:
    """Authenticate to ``node``'s control port and run ``commands``; returns ``(status, lines)``
    for AUTHENTICATE and each command (status "250" on success, else tor's error code).
    ``cookie`` replaces the cookie file's content (to test a wrong cookie)."""
    if auth == "cookie":
        secret = (cookie if cookie is not None else node.cookie_file.read_bytes()).hex()
    elif auth == "password":
        given = password if password is not None else node.control_password or ""
        secret = '"' + given.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        raise ValueError(f"auth must be 'cookie' or 'password', not {auth!r}")
    results: list[tuple[str, list[str]]] = []
    with socket.create_connection((LOOPBACK, node.control_port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        for line in [f"AUTHENTICATE {secret}", *commands]:
            sock.sendall(line.encode() + b"\r\n")
            lines: list[str] = []
            while True:
                raw = reader.readline()
                if not raw:
                    raise TorNetError("control connection closed")
                text = raw.decode(errors="replace").rstrip("\r\n")
                lines.append(text[4:])
                if len(text) >= 4 and text[3] == " ":
                    results.append((text[:3], lines))
                    break
            if results[-1][0] != "250":
                break
    return results


def wait_onion_reachable(socks_port: int, onion: str, port: int, timeout: float = 120.0) -> float:
    """Block until a TCP stream to ``onion:port`` opens through the SOCKS port (the service's
    descriptor has reached the HSDirs); returns the seconds waited."""
    began = time.monotonic()

    def probe() -> bool:
        try:
            socks5_connect(socks_port, onion, port, timeout=30).close()
            return True
        except (TorNetError, OSError):
            return False

    wait_for(probe, timeout=timeout, what=f"{onion}:{port} to be reachable", interval=1.0)
    return time.monotonic() - began
