"""Start real Electrum 4.8 daemons with the plugin installed, drive them through Electrum's CLI.

Usage (a test or the demo)::

    from tests.harness.electrum import ElectrumDaemon, build_plugin_zip

    with ElectrumDaemon(tmp_path / "alice", plugin_zip=build_plugin_zip(tmp_path)) as alice:
        alice.start()                            # offline regtest daemon
        alice.create_wallet("w1")                # creates + loads a segwit wallet, no password
        print(alice.cli("musig2_plugin_status")) # parsed JSON answer

    ElectrumDaemon(dir, server="127.0.0.1:51001:t")   # online: this one ElectrumX server only

Everything lives in the given throwaway directory (its ``regtest/`` sub-directory is Electrum's
data dir); ``stop()`` (also on ``__exit__``, a pytest failure, SIGTERM or interpreter exit, through
``tests.harness.procs``) kills the daemon by pid.

How the plugin is authorized without touching the machine
--------------------------------------------------------
Electrum 4.8 runs an external zip plugin only when ``plugins.<name>.authorized`` in its config is
an ECDSA signature over the zip's sha256 by the *plugin key*, whose public half it reads from the
root-owned, read-only file ``/etc/electrum/plugins_key`` (see ``electrum/plugin.py``:
``get_pubkey_bytes``, ``_has_root_permissions``, ``is_authorized``). A user makes that file once in
the GUI (Tools > Plugins > Add: choose a plugin password; the GUI shows the key to save there).

The harness does the same with a test password, but without writing into the machine's /etc:
every Electrum process it runs (the daemon and each CLI call, which must also see the plugin to
know its commands) is started by ``unshare -m`` in a private mount namespace where /etc is a
read-only overlay of the real /etc plus our ``electrum/plugins_key``. Electrum's own checks then
run unmodified: the file is owned by root and not writable, the signature in the config is made
with the key Electrum derives from the password (``Plugins.derive_privkey``). This needs root
(as CI and the developers' machines run); without it :class:`HarnessError` says so.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from . import procs

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
ELECTRUM_BIN = VENV / "bin" / "electrum"
PLUGIN_NAME = "musig2_plugin"
# Only a test secret: it authorizes plugin zips inside throwaway Electrum directories.
TEST_PLUGIN_PASSWORD = "musig2-test-plugin-password"
PLUGIN_KEY_VERSION = 1  # electrum.plugin.PLUGIN_PASSWORD_VERSION


class HarnessError(RuntimeError):
    """The harness could not set up or drive Electrum; the message says which step and why."""


class ElectrumCommandError(HarnessError):
    """An Electrum CLI command exited non-zero. ``returncode``/``stdout``/``stderr`` are kept."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"electrum {' '.join(argv)} exited {returncode}: {(stderr or stdout).strip()[-2000:]}")


def require_electrum() -> str:
    """Electrum's version, or a clear error when it is missing or not 4.8.x.

    Tests call this at import time instead of skipping: a suite that silently skips the Electrum
    tests on a machine without Electrum would pass while proving nothing.
    """
    try:
        from electrum.version import ELECTRUM_VERSION
    except ImportError as e:
        raise HarnessError(f"Electrum is not importable ({e}); run scripts/bootstrap.sh, "
                           "which installs Electrum 4.8 into .venv") from None
    if not ELECTRUM_VERSION.startswith("4.8."):
        raise HarnessError(f"Electrum {ELECTRUM_VERSION} is installed, this plugin needs 4.8.x; "
                           "rerun scripts/bootstrap.sh")
    return ELECTRUM_VERSION


def build_plugin_zip(out_dir: Path) -> Path:
    """Build the plugin zip from the working tree into ``out_dir`` (scripts/build_plugin.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_plugin  # stdlib-only builder
    finally:
        sys.path.pop(0)
    return build_plugin.build(Path(out_dir))


@functools.lru_cache(maxsize=8)
def _derive_privkey(password: str, salt: bytes):
    # Electrum's own derivation (pbkdf2-sha256, 1e5 rounds: cached, it costs ~0.1 s each time)
    from electrum.plugin import Plugins
    return Plugins.derive_privkey(password, salt)


@dataclass(frozen=True)
class PluginKey:
    """The plugin authorization key pair, as Electrum derives it from a password and a salt."""

    password: str
    salt: bytes

    def _privkey(self):
        return _derive_privkey(self.password, self.salt)

    def keyfile_hex(self) -> str:
        """Content of /etc/electrum/plugins_key: version byte, salt, compressed pubkey (hex)."""
        pub = self._privkey().get_public_key_bytes()
        return (bytes([PLUGIN_KEY_VERSION]) + self.salt + pub).hex()

    def sign_zip(self, zip_path: Path) -> str:
        """The value Electrum expects in ``plugins.<name>.authorized`` for this exact zip."""
        digest = hashlib.sha256(Path(zip_path).read_bytes()).digest()
        return self._privkey().ecdsa_sign(digest).hex()


def default_plugin_key() -> PluginKey:
    # A fixed salt keeps the key stable across runs, so a reused directory stays authorized.
    return PluginKey(TEST_PLUGIN_PASSWORD, hashlib.sha256(b"musig2_plugin test salt").digest())


class ElectrumDaemon:
    """One Electrum daemon in its own throwaway directory, regtest only.

    ``offline=True`` (default) starts it with ``--offline``; ``server="127.0.0.1:PORT:t"`` instead
    connects it to that one server (``--oneserver``), for tests on the regtest chain.
    """

    def __init__(self, workdir: Path, *, plugin_zip: Optional[Path] = None, offline: bool = True,
                 server: Optional[str] = None, plugin_key: Optional[PluginKey] = None,
                 enable_plugin: bool = True, extra_args: Iterable[str] = (), name: str = "electrum",
                 venv: Optional[Path] = None, extra_env: Optional[dict[str, str]] = None):
        """``venv``: the environment whose Electrum runs (default: the development .venv; the
        bundle-like .venv-bundle stands in for Electrum's binary bundles). ``extra_env`` is added
        to every Electrum process's environment (e.g. PYTHONPATH for a shadowed module)."""
        if server is not None and offline:
            offline = False
        if server is not None and not server.startswith("127.0.0.1:"):
            raise HarnessError(f"server must be on loopback (127.0.0.1), got {server!r}")
        self.workdir = Path(workdir).resolve()
        self.name = name
        self.offline = offline
        self.server = server
        self.plugin_key = plugin_key or default_plugin_key()
        self.extra_args = list(extra_args)
        self.venv = Path(venv) if venv is not None else VENV
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.etc_overlay = self.workdir / "etc-overlay"
        self.log_path = self.workdir / "daemon.log"
        self._write_keyfile()
        if plugin_zip is not None:
            self.install_plugin(plugin_zip, enable=enable_plugin)

    # --- paths ------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        """Electrum's data directory for regtest (config, wallets/, plugins/)."""
        return self.workdir / "regtest"

    def wallet_path(self, name: str) -> Path:
        return self.datadir / "wallets" / name

    # --- plugin installation (what the GUI's Add / Install buttons do) -------------------------
    def _write_keyfile(self) -> None:
        key_dir = self.etc_overlay / "electrum"
        key_dir.mkdir(parents=True, exist_ok=True)
        key_file = key_dir / "plugins_key"
        key_file.write_text(self.plugin_key.keyfile_hex())
        os.chmod(key_file, 0o644)

    def _config(self):
        from electrum.simple_config import SimpleConfig
        return SimpleConfig({"electrum_path": str(self.workdir), "regtest": True})

    def install_plugin(self, zip_path: Path, *, enable: bool = True, authorize: bool = True) -> Path:
        """Copy the zip into <datadir>/plugins and record Electrum's authorization and enabling.

        Mirrors ``Plugins.authorize_plugin``: copy the file, sign its sha256 into
        ``plugins.<name>.authorized``, set ``plugins.<name>.enabled``. With ``authorize=False``
        the zip is present but unauthorized, which Electrum must refuse to run.
        """
        if self.proc is not None:
            raise HarnessError("install the plugin before start(): Electrum reads plugins at start-up")
        plugins_dir = self.datadir / "plugins"
        plugins_dir.mkdir(parents=True, exist_ok=True)
        for old in plugins_dir.glob(f"{PLUGIN_NAME}-*.zip"):
            old.unlink()
        target = plugins_dir / Path(zip_path).name
        shutil.copyfile(zip_path, target)
        config = self._config()
        if authorize:
            config.set_key(f"plugins.{PLUGIN_NAME}.authorized", self.plugin_key.sign_zip(target))
        elif config.get(f"plugins.{PLUGIN_NAME}.authorized") is not None:
            config.set_key(f"plugins.{PLUGIN_NAME}.authorized", None)
        config.set_key(f"plugins.{PLUGIN_NAME}.enabled", bool(enable))
        return target

    # --- running Electrum -------------------------------------------------------------------
    def namespace_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run where /etc/electrum/plugins_key is this directory's test key.

        For any program that must see the plugin as authorized: Electrum's launcher, or a Python
        script driving Electrum's Qt plugin machinery.
        """
        if os.geteuid() != 0:
            raise HarnessError("the Electrum harness needs root (private mount namespace for "
                               "/etc/electrum/plugins_key); run the tests as root, as CI does")
        if any(c in str(self.etc_overlay) for c in ":,\\"):
            raise HarnessError(f"the work directory {self.workdir} must not contain ':', ',' or '\\' "
                               "(they are separators in overlayfs mount options)")
        if shutil.which("unshare") is None:
            raise HarnessError("'unshare' (util-linux) not found; the harness needs it")
        script = ('mount -t overlay musig2-etc -o "lowerdir=$0:/etc" /etc || '
                  '{ echo "harness: cannot overlay /etc in a mount namespace" >&2; exit 97; }; exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                str(self.etc_overlay), *map(str, argv)]

    def _argv(self, args: Sequence[str]) -> list[str]:
        """Electrum's own launcher (of this daemon's venv) on this directory, regtest."""
        launcher = self.venv / "bin" / "electrum"
        if not launcher.exists():
            raise HarnessError(f"{launcher} missing: run scripts/bootstrap.sh first")
        return self.namespace_argv([launcher, "--regtest", "-D", str(self.workdir), *args])

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HOME"] = str(self.workdir)          # nothing leaks into the real ~/.electrum
        env.pop("ELECTRUM_DEBUG", None)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        # Which crypto backend the plugin picks is the plugin's own choice in each environment.
        env.pop("MUSIG2_CRYPTO_BACKEND", None)
        env.update(self.extra_env)
        return env

    @property
    def lockfile(self) -> Path:
        """Electrum's daemon lock file: ``(socktype, address, create_time)`` of the running daemon."""
        return self.datadir / "daemon"

    def _lockfile_time(self) -> Optional[float]:
        try:
            return float(ast.literal_eval(self.lockfile.read_text())[2])
        except (OSError, ValueError, SyntaxError, IndexError, TypeError):
            return None

    def start(self, timeout: float = 90.0) -> None:
        """Start the daemon in the foreground (own process group) and wait until it answers.

        "Answers" means *our* process answers: another daemon already serving this directory
        would answer the CLI too, so that case is refused up front, and an answer only counts
        when the lock file was written after our start and our process is still alive.
        """
        if self.proc is not None and self.proc.poll() is None:
            return
        if self.lockfile.exists() and self.run("list_wallets", timeout=30).returncode == 0:
            raise HarnessError(f"another Electrum daemon already serves {self.workdir}")
        net = ["--offline"] if self.offline else ["--oneserver", "--server", self.server]
        started_at = time.time()
        log = open(self.log_path, "ab")
        try:
            self.proc = procs.spawn(f"electrum:{self.name}",
                                    self._argv(["daemon", *net, *self.extra_args]),
                                    env=self._env(), cwd=self.workdir, log=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        last: Optional[Exception] = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                procs.stop(self.proc)
                self.proc = None
                raise HarnessError(f"Electrum daemon {self.name} exited with {code} "
                                   f"during start-up; log:\n{self.log_tail()}")
            created = self._lockfile_time()
            if created is not None and created >= started_at - 1:
                try:
                    self.cli("list_wallets", timeout=20)
                    if self.proc.poll() is None:
                        return
                    continue
                except ElectrumCommandError as e:
                    last = e
            time.sleep(0.3)
        self.stop()
        raise HarnessError(f"Electrum daemon {self.name} did not answer within {timeout}s "
                           f"(last: {last}); log:\n{self.log_tail()}")

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run ``electrum --regtest -D <dir> <args>``; returns the finished process, any status."""
        try:
            return subprocess.run(self._argv(args), env=self._env(), cwd=self.workdir,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"electrum {' '.join(args)} did not finish within {timeout}s") from e

    def cli(self, *args: str, timeout: float = 60.0) -> Any:
        """Run a command through Electrum's command line; parsed JSON (or the plain text)."""
        res = self.run(*args, timeout=timeout)
        if res.returncode != 0:
            raise ElectrumCommandError(args, res.returncode, res.stdout, res.stderr)
        out = res.stdout.strip()
        try:
            return json.loads(out)
        except ValueError:
            return out

    def create_wallet(self, name: str = "default_wallet", *, password: Optional[str] = None,
                      seed_type: str = "segwit", load: bool = True) -> dict:
        """Create a new wallet through the running daemon (and load it). Returns Electrum's answer."""
        path = str(self.wallet_path(name))
        args = ["create", "--seed_type", seed_type, "-w", path]
        if password is not None:
            args += ["--password", password]
        result = self.cli(*args)
        if load:
            self.load_wallet(name, password=password)
        return result

    def restore_wallet(self, name: str, text: str, *, password: Optional[str] = None,
                       load: bool = True) -> dict:
        path = str(self.wallet_path(name))
        args = ["restore", text, "-w", path]
        if password is not None:
            args += ["--password", password]
        result = self.cli(*args)
        if load:
            self.load_wallet(name, password=password)
        return result

    def load_wallet(self, name: str, *, password: Optional[str] = None) -> None:
        args = ["load_wallet", "-w", str(self.wallet_path(name))]
        if password is not None:
            args += ["--password", password]
        self.cli(*args)

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the daemon to stop, then make sure by pid (process group). Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.run("stop", timeout=timeout)
                self.proc.wait(timeout)
            except (HarnessError, subprocess.TimeoutExpired):
                pass
        procs.stop(self.proc, timeout=5.0)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "ElectrumDaemon":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
