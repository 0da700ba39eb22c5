"""A real regtest chain for the tests, the examples and the benchmarks: bitcoind + ElectrumX.

Why real parts: consensus, not our own code, must judge every spend (DESIGN.md section 6), and
Electrum only talks to an Electrum server, so the chain is a regtest ``bitcoind`` with an ElectrumX
in front of it, exactly as Electrum's own regression tests do it.

Where the node comes from (see docs/regtest.md): ``$BITCOIND`` (Bitcoin Core/Knots v26+) when set,
else Bitcoin Knots from Debian 13 prepared by ``scripts/bootstrap.d/30-chain.sh`` in the
git-ignored project cache and run through that folder's own loader.  When neither is available,
:func:`bitcoind_command` raises :class:`ChainSetupError` with the set-up step's one-line reason,
so chain-backed tests fail loudly with it instead of skipping.

Everything binds to 127.0.0.1 on free ports in throwaway directories; every process is started
through :mod:`tests.harness.procs` and is stopped by pid at the end whatever happens.
Plain classes with ``start()``/``stop()`` that are also context managers; the pytest fixtures in
tests/chain/conftest.py are thin wrappers.  RPC uses only the standard library.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from . import procs

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = "scripts/bootstrap.d/30-chain.sh"
LOOPBACK = "127.0.0.1"
MIN_BITCOIND_MAJOR = 26
#: Blocks mined at start so that the miner wallet holds spendable (mature) coinbase outputs.
COINBASE_MATURITY = 100

T = TypeVar("T")


class ChainSetupError(RuntimeError):
    """The node (or server) cannot be prepared or started on this machine; the message says why."""


class RPCError(Exception):
    """A JSON-RPC error answered by bitcoind, with its code and message unchanged."""

    def __init__(self, code: int, message: str, method: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.code = code
        self.message = message
        self.method = method


# ----------------------------------------------------------------------------------------------
# Where things are


def cache_dir() -> Path:
    """The project cache folder (git-ignored); ``$MUSIG2_CACHE`` overrides, as for the set-up step."""
    return Path(os.environ.get("MUSIG2_CACHE") or REPO / ".cache")


def _bitcoind_major(argv: Sequence[str]) -> int | None:
    try:
        out = subprocess.run(
            [*argv, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    match = re.search(r" v(\d+)\.", out.splitlines()[0] if out else "")
    return int(match.group(1)) if match else None


def bitcoind_command() -> list[str]:
    """The argv prefix that runs bitcoind here, or ChainSetupError with one line saying what to do."""
    hint = "set $BITCOIND to a bitcoind v26+ binary"
    env_bin = os.environ.get("BITCOIND")
    if env_bin:
        if not (os.path.isfile(env_bin) and os.access(env_bin, os.X_OK)):
            raise ChainSetupError(f"chain set-up: $BITCOIND={env_bin} is not an executable file; {hint}")
        major = _bitcoind_major([env_bin])
        if major is None or major < MIN_BITCOIND_MAJOR:
            raise ChainSetupError(
                f"chain set-up: $BITCOIND={env_bin} is not bitcoind v{MIN_BITCOIND_MAJOR} or newer; {hint}"
            )
        return [env_bin]
    root = cache_dir() / "knots-trixie"
    if (root / ".musig2-stamp").is_file():
        argv = [
            str(root / "usr/lib64/ld-linux-x86-64.so.2"),
            "--library-path",
            str(root / "usr/lib/x86_64-linux-gnu"),
            str(root / "usr/bin/bitcoind"),
        ]
        if _bitcoind_major(argv) is not None:
            return argv
    error_file = cache_dir() / "knots-trixie.error"
    if error_file.is_file():
        line = error_file.read_text().strip().splitlines()
        if line:
            raise ChainSetupError(line[0])
    raise ChainSetupError(
        f"chain set-up: bitcoind is not prepared in {root}; run scripts/bootstrap.sh "
        f"(or bash {SETUP_SCRIPT}) as root, or {hint}"
    )


def electrumx_command() -> list[str]:
    """ElectrumX's server script from the interpreter running us (``e-x`` in requirements.txt)."""
    script = Path(sys.executable).parent / "electrumx_server"
    if not script.is_file():
        raise ChainSetupError(
            f"chain set-up: {script} is missing; run scripts/bootstrap.sh "
            "(installs e-x==1.20.0 and plyvel from requirements.txt)"
        )
    return [sys.executable, str(script)]


# ----------------------------------------------------------------------------------------------
# Small tools


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((LOOPBACK, port)) == 0


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``probe`` until it returns a truthy value and return it.

    ``alive`` (when given) returns an error text once the thing we wait for has died, so a crashed
    process fails at once with its reason instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        if alive is not None:
            dead = alive()
            if dead:
                raise ChainSetupError(f"while waiting for {what}: {dead}")
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the probe's own failure is the reason we keep polling
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _btc(amount: Decimal | int | str | float) -> str:
    """An amount for bitcoind's RPC as a decimal string (no float rounding on the way)."""
    return format(Decimal(str(amount)).quantize(Decimal("0.00000001")), "f")


class _Component(ABC):
    """Start/stop life cycle shared by the node and the server: temp dir, log, process."""

    name = "component"

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, keep_dir: bool = False) -> None:
        self._base_dir = base_dir
        self.keep_dir = keep_dir or os.environ.get("MUSIG2_KEEP_DIRS") == "1"
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_fh: Any = None

    def _make_dir(self) -> Path:
        self.dir = Path(tempfile.mkdtemp(prefix=f"musig2-{self.name}-", dir=self._base_dir))
        procs.track_dir(self.dir, keep=self.keep_dir)
        self.log_path = self.dir / f"{self.name}.log"
        self._log_fh = open(self.log_path, "ab")
        return self.dir

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.proc = procs.spawn(self.name, argv, env=env, cwd=self.dir, log=self._log_fh)

    def died(self) -> str | None:
        """None while the process runs, else its exit status and the end of its log."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return f"{self.name} exited with status {self.proc.returncode}; log tail:\n{self.log_tail()}"

    def log_tail(self, lines: int = 25) -> str:
        return _tail(self.log_path, lines) if self.log_path else "(not started)"

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, timeout=15)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self.dir is not None:
            procs.remove_dir(self.dir)

    #: Log lines meaning another program took the free port we picked before we could bind it.
    PORT_CLASH = ("Address already in use", "address already in use", "Unable to bind")
    START_ATTEMPTS = 3

    def start(self, timeout: float = 90):
        """Start in a fresh directory on fresh ports; retried when a picked port was taken meanwhile
        (free ports are chosen before the program binds them, and other programs run here too)."""
        attempt = 1
        while True:
            try:
                self._start_once(timeout)
                return self
            except ChainSetupError as exc:
                if attempt >= self.START_ATTEMPTS or not any(m in str(exc) for m in self.PORT_CLASH):
                    raise
                attempt += 1

    @abstractmethod
    def _start_once(self, timeout: float) -> None:
        """Start the program; on any failure stop it (by pid) and remove its directory, then raise."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------
# bitcoind


class NodeRPC:
    """JSON-RPC 1.0 over HTTP to bitcoind with the cookie's user and password (stdlib only)."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.port = port
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self._ids = 0

    def url(self, wallet: str | None = None) -> str:
        base = f"http://{LOOPBACK}:{self.port}/"
        return base + (f"wallet/{wallet}" if wallet is not None else "")

    def call(self, method: str, *params: Any, wallet: str | None = None, timeout: float = 60) -> Any:
        self._ids += 1
        body = json.dumps({"jsonrpc": "1.0", "id": self._ids, "method": method, "params": list(params)})
        req = urllib.request.Request(self.url(wallet), body.encode(), self._headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            # bitcoind answers RPC errors with HTTP 404/500 and the JSON error in the body.
            raw = exc.read()
            if not raw:
                raise RPCError(exc.code, f"HTTP {exc.code} {exc.reason}", method) from None
        reply = json.loads(raw, parse_float=Decimal)
        if reply.get("error"):
            err = reply["error"]
            raise RPCError(int(err.get("code", 0)), str(err.get("message", "")), method)
        return reply["result"]


class Bitcoind(_Component):
    """A throwaway regtest bitcoind with a ``miner`` wallet that mines and funds addresses."""

    name = "bitcoind"
    MINER_WALLET = "miner"

    def __init__(
        self,
        *,
        extra_args: Iterable[str] = (),
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(base_dir, keep_dir)
        self.extra_args = list(extra_args)
        self.rpc_port = 0
        self.rpc: NodeRPC | None = None
        self.cookie: tuple[str, str] | None = None
        self.miner_address = ""

    def _start_once(self, timeout: float) -> None:
        argv = bitcoind_command()
        datadir = self._make_dir() / "data"
        datadir.mkdir()
        self.rpc_port = free_port()
        self._spawn(
            [
                *argv,
                "-regtest",
                f"-datadir={datadir}",
                "-server=1",
                "-listen=0",  # no P2P at all: nothing but RPC on loopback
                "-dnsseed=0",
                "-fixedseeds=0",
                "-discover=0",
                f"-rpcbind={LOOPBACK}",
                f"-rpcallowip={LOOPBACK}",
                f"-rpcport={self.rpc_port}",
                "-txindex=1",  # ElectrumX needs it; getrawtransaction of confirmed txs too
                "-fallbackfee=0.0002",  # no fee estimates on a fresh regtest chain
                "-persistmempool=0",
                "-printtoconsole=1",
                "-rpcthreads=8",
                *self.extra_args,
            ]
        )
        cookie_path = datadir / "regtest" / ".cookie"
        try:
            wait_until(cookie_path.is_file, timeout=timeout, what="bitcoind's RPC cookie", alive=self.died)
            user, password = cookie_path.read_text().strip().split(":", 1)
            self.cookie = (user, password)
            self.rpc = NodeRPC(self.rpc_port, user, password)
            wait_until(
                lambda: self.rpc.call("getblockchaininfo", timeout=5),
                timeout=timeout,
                what="bitcoind's RPC to leave warm-up",
                alive=self.died,
            )
            self.call("createwallet", self.MINER_WALLET)
            self.miner_address = self.call("getnewaddress", wallet=self.MINER_WALLET)
        except BaseException:
            self.stop()
            raise

    @property
    def daemon_url(self) -> str:
        """``http://user:pass@127.0.0.1:port/`` as ElectrumX's DAEMON_URL wants it."""
        assert self.cookie is not None, "bitcoind not started"
        return f"http://{self.cookie[0]}:{self.cookie[1]}@{LOOPBACK}:{self.rpc_port}/"

    def call(self, method: str, *params: Any, wallet: str | None = None, timeout: float = 60) -> Any:
        if self.rpc is None:
            raise ChainSetupError("bitcoind is not started")
        return self.rpc.call(method, *params, wallet=wallet, timeout=timeout)

    # -- helpers the tests use ----------------------------------------------------------------

    def height(self) -> int:
        return int(self.call("getblockcount"))

    def mine(self, n: int = 1, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks (to the miner wallet unless ``address`` is given); their hashes."""
        return list(self.call("generatetoaddress", n, address or self.miner_address))

    def fund(self, address: str, amount: Decimal | int | str) -> str:
        """Send ``amount`` BTC from the miner wallet to ``address``; the txid (unconfirmed)."""
        return str(self.call("sendtoaddress", address, _btc(amount), wallet=self.MINER_WALLET))

    def testmempoolaccept(self, raw_txs: str | Sequence[str]) -> list[dict[str, Any]]:
        """The node's verdict on raw transactions without broadcasting them."""
        txs = [raw_txs] if isinstance(raw_txs, str) else list(raw_txs)
        return list(self.call("testmempoolaccept", txs))

    def getrawtransaction(self, txid: str, verbose: bool = True, blockhash: str | None = None) -> Any:
        params: list[Any] = [txid, 1 if verbose else 0]
        if blockhash:
            params.append(blockhash)
        return self.call("getrawtransaction", *params)

    def in_mempool(self, txid: str) -> bool:
        return txid in self.call("getrawmempool")


# ----------------------------------------------------------------------------------------------
# ElectrumX


def electrum_protocol_call(port: int, method: str, params: Sequence[Any] = (), timeout: float = 10) -> Any:
    """One Electrum-protocol request to a server on 127.0.0.1 (after ``server.version``)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        fh = sock.makefile("rwb")
        requests = [
            {"jsonrpc": "2.0", "id": 0, "method": "server.version", "params": ["musig2-harness", "1.4"]},
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        ]
        for req in requests:
            fh.write(json.dumps(req).encode() + b"\n")
        fh.flush()
        while True:
            line = fh.readline()
            if not line:
                raise ConnectionError(f"server closed the connection before answering {method}")
            msg = json.loads(line)
            if msg.get("id") != 1:
                continue
            if "error" in msg:
                raise RuntimeError(f"{method}: {msg['error']}")
            return msg["result"]


class ElectrumX(_Component):
    """A throwaway ElectrumX (``e-x`` 1.20.0, LevelDB) serving plain TCP on 127.0.0.1 for ``node``."""

    name = "electrumx"

    def __init__(
        self,
        node: Bitcoind,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
        public_host: str | None = None,
    ) -> None:
        super().__init__(base_dir, keep_dir)
        self.node = node
        self.port = 0
        self.rpc_port = 0
        #: On the test internet (tests/harness/netns.py) the server also listens on this
        #: machine's public address, for wallets in other namespaces; None: loopback only.
        self.public_host = public_host

    @property
    def server(self) -> str:
        """``host:port:t`` as Electrum's ``--server`` wants it."""
        return f"{self.public_host or LOOPBACK}:{self.port}:t"

    def _start_once(self, timeout: float) -> None:
        argv = electrumx_command()
        db = self._make_dir() / "db"
        db.mkdir()
        self.port, self.rpc_port = free_port(), free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "COIN": "Bitcoin",
            "NET": "regtest",
            "DAEMON_URL": self.node.daemon_url,
            "DB_DIRECTORY": str(db),
            "DB_ENGINE": "leveldb",
            "SERVICES": f"tcp://{'0.0.0.0' if self.public_host else LOOPBACK}:{self.port},"
                        f"rpc://{LOOPBACK}:{self.rpc_port}",
            "PEER_DISCOVERY": "off",
            "PEER_ANNOUNCE": "",
            "ALLOW_ROOT": "1",  # CI and this machine run as root; the server is loopback-only
            "CACHE_MB": "100",
            # A test suite makes many requests quickly from one address: no cost throttling,
            # and poll the node often so new blocks and mempool txs reach the wallets fast.
            "COST_SOFT_LIMIT": "0",
            "COST_HARD_LIMIT": "0",
            "REQUEST_SLEEP": "0",
            "INITIAL_CONCURRENT": "100",
            "DAEMON_POLL_INTERVAL_BLOCKS": "100",
            "DAEMON_POLL_INTERVAL_MEMPOOL": "100",
            "LOG_LEVEL": "info",
        }
        self._spawn(argv, env=env)
        try:
            target = self.node.height()
            wait_until(
                lambda: self.height(timeout=2) >= target,
                timeout=timeout,
                what=f"ElectrumX to serve on port {self.port} at height {target}",
                interval=0.2,
                alive=self.died,
            )
        except BaseException:
            self.stop()
            raise

    def died(self) -> str | None:
        """Also "dead" when it runs but could not listen: ElectrumX logs that and carries on."""
        dead = super().died()
        if dead is None and self.log_path is not None and self.log_path.is_file():
            if "server failed to listen" in self.log_path.read_text(errors="replace"):
                return f"electrumx could not listen on its port; log tail:\n{self.log_tail()}"
        return dead

    def call(self, method: str, *params: Any, timeout: float = 10) -> Any:
        return electrum_protocol_call(self.port, method, params, timeout=timeout)

    def height(self, timeout: float = 10) -> int:
        return int(self.call("blockchain.headers.subscribe", timeout=timeout)["height"])

    def wait_for_height(self, height: int, timeout: float = 60) -> int:
        return wait_until(
            lambda: (h := self.height()) >= height and h,
            timeout=timeout,
            what=f"ElectrumX at height {height}",
            interval=0.05,
            alive=self.died,
        )


# ----------------------------------------------------------------------------------------------
# Node + server together


class RegtestChain:
    """bitcoind + ElectrumX, with mature coins in the miner wallet and the server caught up."""

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None, keep_dirs: bool = False,
                 public_host: str | None = None) -> None:
        self.node = Bitcoind(base_dir=base_dir, keep_dir=keep_dirs)
        self.server = ElectrumX(self.node, base_dir=base_dir, keep_dir=keep_dirs,
                                public_host=public_host)
        self.startup_seconds: dict[str, float] = {}

    def start(self) -> "RegtestChain":
        t0 = time.monotonic()
        self.node.start()
        self.node.mine(COINBASE_MATURITY + 1)
        t1 = time.monotonic()
        try:
            self.server.start()
        except BaseException:
            self.node.stop()
            raise
        t2 = time.monotonic()
        self.startup_seconds = {"bitcoind": t1 - t0, "electrumx": t2 - t1}
        return self

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            self.node.stop()

    def __enter__(self) -> "RegtestChain":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def electrum_server(self) -> str:
        return self.server.server

    def mine(self, n: int = 1, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks and wait until ElectrumX has indexed them (so wallets can follow)."""
        hashes = self.node.mine(n, address)
        self.server.wait_for_height(self.node.height())
        return hashes

    def fund(self, address: str, amount: Decimal | int | str, *, confirm: bool = False) -> str:
        """Pay ``amount`` BTC to ``address`` from the miner; optionally mine one block on it."""
        txid = self.node.fund(address, amount)
        if confirm:
            self.mine(1)
        return txid

    def testmempoolaccept(self, raw_txs: str | Sequence[str]) -> list[dict[str, Any]]:
        return self.node.testmempoolaccept(raw_txs)

    def getrawtransaction(self, txid: str, verbose: bool = True) -> Any:
        return self.node.getrawtransaction(txid, verbose)
