"""Electrum daemons on the regtest chain: one daemon, one wallet, one server (ours).

Why this module next to tests/harness/electrum.py: that launcher starts a daemon and drives it
through Electrum's command line (a new Python process per command, ~1.5 s each).  Waiting until
several daemons have seen a block or a transaction polls often, so here the daemon's own JSON-RPC
endpoint (the Unix socket Electrum's CLI itself talks to, with the credentials from the daemon's
config) is called directly with the standard library: the same commands, answered in
milliseconds, and a failing command's exception comes back as Electrum raised it
(``error.data.exception``), unchanged.
"""

from __future__ import annotations

import ast
import base64
import http.client
import json
import os
import secrets
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import procs
from .chain import RegtestChain, wait_until
from .electrum import ElectrumDaemon

WALLET_NAME = "wallet"


class ElectrumRPCError(Exception):
    """An error answered by an Electrum daemon's JSON-RPC, fields kept exactly as Electrum sent them.

    ``exception`` is Electrum's ``repr()`` of the exception it raised (for internal errors, e.g. a
    refused broadcast), ``message`` its message (for user-facing errors).
    """

    def __init__(self, method: str, code: int, message: str, exception: str | None, traceback: str | None):
        super().__init__(f"{method}: {exception or message}")
        self.method = method
        self.code = code
        self.message = message
        self.exception = exception
        self.traceback = traceback


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("127.0.0.1", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


class DaemonRPC:
    """JSON-RPC 2.0 to a running Electrum daemon whose data dir (``<dir>/regtest``) is ``datadir``."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = Path(datadir)
        self._ids = 0

    def _endpoint(self) -> tuple[str, Any]:
        # The daemon writes (socktype, address, create_time) into its lockfile once it listens.
        socktype, address, _created = ast.literal_eval((self.datadir / "daemon").read_text())
        return socktype, address

    def _auth(self) -> str:
        config = json.loads((self.datadir / "config").read_text())
        token = base64.b64encode(f"{config['rpcuser']}:{config['rpcpassword']}".encode()).decode()
        return f"Basic {token}"

    def call(self, method: str, *args: Any, timeout: float = 60, **kwargs: Any) -> Any:
        """Call ``method``; keyword arguments go by name (Electrum's commands take ``wallet_path``)."""
        if args and kwargs:
            raise TypeError("Electrum's JSON-RPC takes positional or named parameters, not both")
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method,
                           "params": kwargs if kwargs else list(args)})
        socktype, address = self._endpoint()
        if socktype == "unix":
            conn: http.client.HTTPConnection = _UnixHTTPConnection(address, timeout)
        else:
            conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
        try:
            conn.request("POST", "/", body, {"Authorization": self._auth(), "Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ElectrumRPCError(method, resp.status, raw.decode(errors="replace"), None, None)
        reply = json.loads(raw)
        if reply.get("error"):
            err = reply["error"]
            data = err.get("data") or {}
            raise ElectrumRPCError(method, int(err.get("code", 0)), str(err.get("message", "")),
                                   data.get("exception"), data.get("traceback"))
        return reply["result"]


def set_rpc_credentials(electrum_dir: Path) -> None:
    """Write the daemon's JSON-RPC user and password into its config before it starts.

    Why: left unset, the daemon and every CLI process started while it boots each generate a
    password and save it to the same config file; whichever writes last wins, and a client holding
    the other one is answered "Forbidden".  Fixed credentials remove that race.
    """
    from electrum.simple_config import SimpleConfig

    config = SimpleConfig({"electrum_path": str(electrum_dir), "regtest": True})
    config.set_key("rpcuser", "musig2-harness")
    config.set_key("rpcpassword", secrets.token_urlsafe(24), save=True)


class ChainWallet:
    """One Electrum daemon connected only to the chain's ElectrumX, with one fresh segwit wallet.

    ``cmd`` calls a wallet command over the daemon's JSON-RPC; ``cli`` runs the same through
    Electrum's command line (what a user types), both with this wallet selected.
    """

    def __init__(
        self,
        chain: RegtestChain,
        name: str = "electrum",
        *,
        plugin_zip: Path | None = None,
        seed_type: str = "segwit",
        base_dir: str | os.PathLike[str] | None = None,
        keep_dir: bool = False,
        venv: Path | None = None,
    ) -> None:
        """``venv``: whose Electrum runs (default the development .venv; .venv-bundle stands in
        for Electrum's binary bundles)."""
        self.chain = chain
        self.venv = venv
        self.name = name
        self.plugin_zip = plugin_zip
        self.seed_type = seed_type
        self._base_dir = base_dir
        self.keep_dir = keep_dir or os.environ.get("MUSIG2_KEEP_DIRS") == "1"
        self.dir: Path | None = None
        self.daemon: ElectrumDaemon | None = None
        self.rpc: DaemonRPC | None = None
        self.wallet_path = ""

    def start(self, timeout: float = 90) -> "ChainWallet":
        self.dir = Path(tempfile.mkdtemp(prefix=f"musig2-electrum-{self.name}-", dir=self._base_dir))
        procs.track_dir(self.dir, keep=self.keep_dir)
        try:
            self.daemon = ElectrumDaemon(self.dir / "electrum", plugin_zip=self.plugin_zip,
                                         server=self.chain.electrum_server, name=self.name,
                                         venv=self.venv)
            set_rpc_credentials(self.daemon.workdir)
            self.daemon.start(timeout=timeout)
            self.rpc = DaemonRPC(self.daemon.datadir)
            self.wallet_path = str(self.daemon.wallet_path(WALLET_NAME))
            self.rpc.call("create", seed_type=self.seed_type, wallet_path=self.wallet_path)
            self.rpc.call("load_wallet", wallet_path=self.wallet_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.daemon is not None:
            # Electrum's own "stop" over JSON-RPC (a CLI "stop" costs a Python start-up), then the
            # launcher's stop, which kills by pid whatever is left.
            proc = self.daemon.proc
            if proc is not None and proc.poll() is None and self.rpc is not None:
                try:
                    self.rpc.call("stop", timeout=10)
                    proc.wait(15)
                except Exception:
                    pass
            self.daemon.stop()
        if self.dir is not None:
            procs.remove_dir(self.dir)

    def __enter__(self) -> "ChainWallet":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- commands ------------------------------------------------------------------------------

    def cmd(self, method: str, timeout: float = 60, **kwargs: Any) -> Any:
        """A wallet command over JSON-RPC (``wallet_path`` filled in)."""
        assert self.rpc is not None, "daemon not started"
        return self.rpc.call(method, timeout=timeout, wallet_path=self.wallet_path, **kwargs)

    def call(self, method: str, timeout: float = 60, **kwargs: Any) -> Any:
        """A command that needs no wallet (``getinfo``, ``broadcast``...) over JSON-RPC."""
        assert self.rpc is not None, "daemon not started"
        return self.rpc.call(method, timeout=timeout, **kwargs)

    def cli(self, *args: str, timeout: float = 60) -> Any:
        """Electrum's command line, ``-w <this wallet>`` appended."""
        assert self.daemon is not None, "daemon not started"
        return self.daemon.cli(*args, "-w", self.wallet_path, timeout=timeout)

    def new_address(self) -> str:
        return str(self.cmd("getunusedaddress"))

    def balance(self) -> dict[str, Decimal]:
        """Electrum's ``getbalance`` with amounts as Decimal BTC (absent keys are zero)."""
        raw = self.cmd("getbalance")
        return {k: Decimal(str(raw.get(k, "0"))) for k in ("confirmed", "unconfirmed", "unmatured")}

    def height(self) -> int:
        """The height of the header chain this daemon has verified."""
        return int(self.call("getinfo")["blockchain_height"])

    def tx_confirmations(self, txid: str) -> int | None:
        """Confirmations of ``txid`` in this wallet, or None when the wallet has not seen it."""
        try:
            return int(self.cmd("get_tx_status", txid=txid)["confirmations"])
        except ElectrumRPCError as exc:
            if "not in wallet" in exc.message:
                return None
            raise

    def synchronized(self) -> bool:
        return bool(self.cmd("is_synchronized"))

    def died(self) -> str | None:
        proc = self.daemon.proc if self.daemon is not None else None
        if proc is None or proc.poll() is None:
            return None
        return f"Electrum daemon {self.name} exited with {proc.returncode}; log:\n{self.daemon.log_tail()}"


def start_wallets(
    chain: RegtestChain,
    count: int,
    *,
    names: Sequence[str] | None = None,
    plugin_zip: Path | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    venvs: Sequence[Path | None] | None = None,
) -> list[ChainWallet]:
    """Start ``count`` daemons+wallets concurrently; on any failure, stop all of them and raise.

    ``venvs[i]`` picks wallet i's environment (None: the development .venv)."""
    names = list(names) if names is not None else [f"w{i}" for i in range(count)]
    venvs = list(venvs) if venvs is not None else [None] * count
    # Electrum's plugin module must first be imported on the main thread (it pins its hardware
    # wallet thread there); the launcher imports Electrum lazily, so do it before the workers do.
    import electrum.plugin  # noqa: F401

    wallets = [ChainWallet(chain, n, plugin_zip=plugin_zip, base_dir=base_dir, venv=v)
               for n, v in zip(names[:count], venvs[:count] + [None] * (count - len(venvs)))]
    with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
        futures = [pool.submit(w.start) for w in wallets]
        errors = [f.exception() for f in futures]
    if any(errors):
        stop_wallets(wallets)
        raise next(e for e in errors if e is not None)
    return wallets


def stop_wallets(wallets: Iterable[ChainWallet]) -> None:
    wallets = list(wallets)
    with ThreadPoolExecutor(max_workers=max(1, len(wallets))) as pool:
        list(pool.map(lambda w: w.stop(), wallets))


def _all_alive(wallets: Sequence[ChainWallet]):
    def check() -> str | None:
        for w in wallets:
            dead = w.died()
            if dead:
                return dead
        return None
    return check


def wait_for_height(wallets: Sequence[ChainWallet], height: int, timeout: float = 60) -> None:
    """Until every daemon has verified headers up to ``height`` and its wallet is synchronized."""
    wait_until(
        lambda: all(w.height() >= height and w.synchronized() for w in wallets),
        timeout=timeout,
        what=f"{len(wallets)} Electrum daemon(s) at height {height}",
        interval=0.1,
        alive=_all_alive(wallets),
    )


def wait_for_tx(wallets: Sequence[ChainWallet], txid: str, confirmations: int = 0, timeout: float = 60) -> None:
    """Until every wallet has ``txid`` with at least ``confirmations`` (0: seen, maybe unconfirmed)."""
    def seen() -> bool:
        for w in wallets:
            conf = w.tx_confirmations(txid)
            if conf is None or conf < confirmations:
                return False
        return True

    wait_until(seen, timeout=timeout, what=f"tx {txid} with {confirmations} confirmation(s) in "
               f"{len(wallets)} wallet(s)", interval=0.1, alive=_all_alive(wallets))


def wait_for_balance(wallet: ChainWallet, confirmed: Decimal, timeout: float = 60) -> dict[str, Decimal]:
    """Until the wallet shows exactly ``confirmed`` BTC confirmed; its whole balance then."""
    return wait_until(
        lambda: (b := wallet.balance())["confirmed"] == Decimal(confirmed) and b,
        timeout=timeout,
        what=f"{wallet.name} to show {confirmed} BTC confirmed",
        interval=0.1,
        alive=_all_alive([wallet]),
    )
