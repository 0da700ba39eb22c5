"""The GUI-independent core of the plugin as Electrum sees it (the ``BasePlugin`` subclass).

Electrum instantiates one ``Plugin`` per process from ``cmdline.py`` (daemon / command line) or
``qt.py`` (desktop GUI); both derive from :class:`Musig2Plugin` so that the commands, the settings
and, later, the co-signing node behave the same whichever front end runs. Nothing here imports Qt.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional, Protocol

from electrum.logging import get_logger
from electrum.plugin import BasePlugin, hook
from electrum.version import ELECTRUM_VERSION

from . import settings
from .foundation.constants import PLUGIN_NAME  # noqa: F401  (re-exported: commands.py imports it from here)
from .wallet_bridge import (ParticipantKey, PsbtSigner, VaultStore, VaultWatcher,
                            cached_participant_key, check_supported, ensure_participant_key,
                            participant_secret_checked)

if TYPE_CHECKING:
    from .app import WalletCosigner
    from electrum.simple_config import SimpleConfig
    from electrum.wallet import Abstract_Wallet

# The settings are Electrum config variables declared in settings.py (listconfig, helpconfig,
# one default each); the key names stay importable from here for the dialogs and scripts.
CONFIG_NODE_ENABLED = settings.NODE_ENABLED.key()
CONFIG_LISTEN_HOST = settings.LISTEN_HOST.key()
CONFIG_LISTEN_PORT = settings.LISTEN_PORT.key()
CONFIG_BOOTSTRAP = settings.BOOTSTRAP.key()
CONFIG_PUBLIC_HOST = settings.PUBLIC_HOST.key()
CONFIG_PUBLIC_PORT = settings.PUBLIC_PORT.key()
REACH_KEYS = {"listen_host": CONFIG_LISTEN_HOST, "listen_port": CONFIG_LISTEN_PORT,
              "public_host": CONFIG_PUBLIC_HOST, "public_port": CONFIG_PUBLIC_PORT}
CONFIG_ADVERTISE = settings.ADVERTISE.key()
CONFIG_AD_TYPES = settings.AD_TYPES.key()
CONFIG_AD_MIN = settings.AD_MIN.key()
CONFIG_AD_MAX = settings.AD_MAX.key()
CONFIG_AD_FEE = settings.AD_FEE.key()
CONFIG_AD_NICK = settings.AD_NICK.key()


class NodeHandle(Protocol):
    """What the plugin needs from the co-signing node (DHT + peer sessions) to report on it.

    The node is attached by the coordinator layer; this edge only asks whether it runs, so the
    edge does not depend on how the node is built.
    """

    def is_running(self) -> bool: ...


def _is_loopback(host: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def parse_peers(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` -> [(host, port)], refusing anything else (clear error)."""
    from .wallet_bridge import BridgeError
    peers = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BridgeError(f"bootstrap peer {part!r} is not host:port")
        peers.append((host, int(port)))
    if len(peers) > 32:
        raise BridgeError("at most 32 bootstrap peers")
    return peers


def _no_secret() -> bytes:
    from .wallet_bridge import PasswordRequired
    raise PasswordRequired("signing needs the wallet password")


class Musig2Plugin(BasePlugin):
    """Electrum-facing state shared by all front ends: version, settings, the attached node."""

    def __init__(self, parent, config: "SimpleConfig", name: str):
        super().__init__(parent, config, name)
        self.node: Optional[NodeHandle] = None
        self.watcher: Optional[VaultWatcher] = None
        # Per-wallet PSBT signers: they hold round-1 secret nonces in memory only.
        self._signers: dict[int, PsbtSigner] = {}
        self._wallets: dict[int, "Abstract_Wallet"] = {}
        # Per-wallet co-signing services (coordinator node + requests); see cosign.py.
        self.cosigners: dict[int, "WalletCosigner"] = {}
        # GUI listeners of request events: callables (wallet, what, RequestState).
        self.listeners: list = []
        # Advertises waiting for a node's background reach step (kept referenced until done).
        self._pending: set[asyncio.Future] = set()
        # Why MuSig2 cannot run here (a libsecp256k1 without the MuSig2 module), as the one line
        # the user sees: logged once now, shown by the settings dialog and the status command,
        # and the node refuses to start. Nothing else in Electrum is touched.
        from .app import crypto_backend
        self.crypto_backend = crypto_backend.NAME
        self.crypto_problem: Optional[str] = crypto_backend.PROBLEM
        if self.crypto_problem is not None:
            get_logger(__name__).error(self.crypto_problem)

    # --- wallets ----------------------------------------------------------------------------
    @hook
    def daemon_wallet_loaded(self, daemon, wallet: "Abstract_Wallet") -> None:
        self.on_wallet_loaded(wallet)

    @hook
    def load_wallet(self, wallet: "Abstract_Wallet", window=None) -> None:
        self.on_wallet_loaded(wallet)

    @hook
    def close_wallet(self, wallet: "Abstract_Wallet") -> None:
        self.on_wallet_closed(wallet)

    def on_wallet_loaded(self, wallet: "Abstract_Wallet") -> None:
        """Follow the wallet's MuSig2 outputs on its own server connection."""
        self._wallets[id(wallet)] = wallet
        network = getattr(wallet, "network", None)
        if network is not None and self.watcher is None:
            self.watcher = VaultWatcher(network)
        if self.watcher is not None:
            for stored in self.vaults(wallet).all():
                self.watcher.watch(stored.output)

        if (self.is_node_enabled() and network is not None and id(wallet) not in self.cosigners
                and self.crypto_problem is None):   # already said once; no start to fail
            # Start without asking only when no password is needed (or the daemon holds it
            # unlocked); otherwise the GUI asks, or the user runs musig2_plugin_node_start.
            password = None
            if wallet.has_keystore_encryption():
                password = wallet.get_unlocked_password() if hasattr(wallet, "get_unlocked_password") else None
                if not password:
                    return
            try:
                check_supported(wallet)
            except Exception:
                return
            asyncio.run_coroutine_threadsafe(self._autostart(wallet, password), network.asyncio_loop)

    async def _autostart(self, wallet, password) -> None:
        try:
            await self.start_node(wallet, password)
        except Exception as exc:
            get_logger(__name__).warning(f"co-signing node did not start: {exc!r}")

    def on_wallet_closed(self, wallet: "Abstract_Wallet") -> None:
        self._wallets.pop(id(wallet), None)
        signer = self._signers.pop(id(wallet), None)
        if signer is not None:
            signer.forget()      # secret nonces die with the wallet window
        cosigner = self.cosigners.pop(id(wallet), None)
        if cosigner is not None:
            self._stop_soon(cosigner, wallet)

    def _stop_soon(self, cosigner, wallet) -> None:
        network = getattr(wallet, "network", None)
        if network is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(cosigner.stop(), network.asyncio_loop)
        except Exception as exc:
            get_logger(__name__).info(f"stopping the co-signing node: {exc!r}")

    # --- the co-signing node ---------------------------------------------------------------
    def bootstrap_peers(self) -> list[tuple[str, int]]:
        return parse_peers(self.config.MUSIG2_BOOTSTRAP or "")

    def chain(self):
        """The chain of Electrum's network; NodeSettingsError on a network the plugin does not
        support (simnet, mutinynet, ...), so a command says so in one line."""
        from .app import NodeSettingsError, electrum_chain
        from .foundation.chain import UnknownChain
        try:
            return electrum_chain()
        except UnknownChain as exc:
            raise NodeSettingsError(f"the plugin does not run on this network: {exc}") from None

    def reach_settings(self, **overrides):
        """The checked listen/public settings of the chain Electrum runs on (app/reach.py)."""
        from .app import read_reach_settings
        return read_reach_settings(self.config.get, REACH_KEYS, self.chain(), **overrides)

    async def start_node(self, wallet: "Abstract_Wallet", password: Optional[str], *,
                         host: Optional[str] = None, port: Optional[int] = None,
                         bootstrap: Optional[list[tuple[str, int]]] = None,
                         dht: bool = True, public_host: Optional[str] = None,
                         public_port: Optional[int] = None) -> "WalletCosigner":
        """Start this wallet's node (idempotent); advertise if the settings say so.

        Listens where the settings say (loopback by default) on the chain's default port (any
        free one if that is taken and no port was set), publishes the public host/port if set,
        joins through the bootstrap setting, the chain's shipped list and the peers this
        wallet's node remembered last time (app/reach.py, docs/network.md).

        Raises CryptoUnavailable (its message: the one line) before anything else when the
        libsecp256k1 in use lacks the MuSig2 module.
        """
        from .app import require_musig
        require_musig()
        from .app import EndpointNotPublic, NodeSettingsError, WalletCosigner, peers_path
        from .network_settings import network_plan, tor_control
        from .tor import socks_connector
        existing = self.cosigners.get(id(wallet))
        if existing is not None and existing.is_running():
            return existing
        chain = self.chain()
        reach = self.reach_settings(listen_host=host, listen_port=port, public_host=public_host,
                                    public_port=public_port)
        # Before any socket: a configuration that would go around the proxy is refused here.
        plan = network_plan(self.config, reach.listen_host, public_host=reach.public_host)
        control = tor_control(self.config)
        if plan.proxy is not None:
            dht = False   # UDP cannot cross Tor
        boot = self.bootstrap_peers() if bootstrap is None else list(bootstrap)
        boot += [a for a in chain.default_bootstrap if a not in boot]
        secret = self.participant_secret(wallet, password)
        pubkey = self.participant_key(wallet, password).pubkey
        storage = self.get_storage(wallet)
        if "approved_requests" not in storage:
            storage["approved_requests"] = {}
        ports = reach.ports_to_try(chain)
        for i, listen_port in enumerate(ports):
            cosigner = WalletCosigner(wallet, secret,
                                      notify=lambda what, st: self._notify(wallet, what, st),
                                      approvals=storage["approved_requests"], chain=chain,
                                      peers_path=peers_path(self.config.path, pubkey),
                                      connector=None if plan.proxy is None
                                      else socks_connector(plan.proxy))
            # Beyond this machine and without a configured public endpoint: nobody may add us
            # to their DHT routing tables before a dial-back proved us reachable, and how peers
            # reach us (direct / relay) is found out in the background (the reach command's
            # step, docs/network.md). Loopback listeners and onion services behave as before.
            unknown_reach = not _is_loopback(reach.listen_host) and not reach.public_host
            try:
                await cosigner.start(reach.listen_host, listen_port, dht=dht, bootstrap=boot,
                                     public_host=reach.public_host, public_port=reach.public_port,
                                     dht_client=unknown_reach,
                                     reach=unknown_reach and dht and control is None)
                break
            except EndpointNotPublic as exc:
                raise NodeSettingsError(str(exc)) from None
            except OSError as exc:
                if i + 1 == len(ports):
                    raise NodeSettingsError(f"cannot listen on {reach.listen_host}:{listen_port}: "
                                            f"{exc.strerror or exc}") from None
                get_logger(__name__).info(f"default port {listen_port} is taken ({exc}); "
                                          "listening on any free port")
        if control is not None:
            try:
                await cosigner.attach_onion(control)
            except BaseException:
                await cosigner.stop()   # configured as an onion, never advertised as anything else
                raise
        self.cosigners[id(wallet)] = cosigner
        self.node = cosigner
        if self.config.MUSIG2_ADVERTISE:
            if cosigner.reach_pending:      # start does not wait for the reach step
                self._advertise_later(wallet)
            else:
                await self.advertise(wallet)
        return cosigner

    def _advertise_later(self, wallet: "Abstract_Wallet") -> None:
        """Advertise once the background reach step has settled (the advertise waits for it);
        a failure is logged, as for the automatic start."""
        async def run() -> None:
            try:
                await self.advertise(wallet)
            except Exception as exc:
                get_logger(__name__).warning(f"automatic advertise failed: {exc!r}")
        task = asyncio.ensure_future(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop_node(self, wallet: "Abstract_Wallet") -> bool:
        cosigner = self.cosigners.pop(id(wallet), None)
        if cosigner is None:
            return False
        await cosigner.stop()
        if self.node is cosigner:
            self.node = None
        return True

    def cosigner(self, wallet: "Abstract_Wallet") -> "WalletCosigner":
        from .wallet_bridge import BridgeError
        c = self.cosigners.get(id(wallet))
        if c is None or not c.is_running():
            raise BridgeError("the co-signing node of this wallet is not running "
                              "(musig2_plugin_node_start, or enable it in the settings)")
        return c

    async def advertise(self, wallet: "Abstract_Wallet", **overrides):
        """Publish 'advertise me' with the settings' values (overridable per call).

        The nickname is checked first, against the records' own limit: a too-long one is
        refused with the limit in words (BadArgument), never cut short silently.
        """
        from . import app
        nickname = app.check_nickname(str(overrides.get("nickname",
                                                        self.config.MUSIG2_AD_NICKNAME)))
        c = self.cosigner(wallet)
        types = overrides.get("tx_types") or [t.strip() for t in str(
            self.config.MUSIG2_AD_TYPES).split(",") if t.strip()]
        max_amount = overrides.get("max_amount_sat", self.config.MUSIG2_AD_MAX_SAT)
        return await app.advertise(
            c, tx_types=types, nickname=nickname,
            min_amount_sat=int(overrides.get("min_amount_sat", self.config.MUSIG2_AD_MIN_SAT)),
            max_amount_sat=None if max_amount is None else int(max_amount),
            fee_per_signature_sat=int(overrides.get("fee_per_signature_sat",
                                                    self.config.MUSIG2_AD_FEE_SAT)))

    def create_output(self, wallet: "Abstract_Wallet", me: bytes, *, keys=None,
                      descriptor: Optional[str] = None, label: str = "",
                      recovery: Optional[str] = None):
        """A new MuSig2 output remembered in the wallet (saved) and followed on its server: the
        one path of the create_output command and the signer picker."""
        from . import app
        stored = app.create_output(self.vaults(wallet), me, keys=keys, descriptor=descriptor,
                                   label=label, recovery=recovery)
        wallet.save_db()
        self.watch_output(stored.output)
        return stored

    def observed_reputation(self, wallet: "Abstract_Wallet") -> dict[str, list[int]]:
        """What this wallet saw of each co-signer: [sessions completed, sessions it failed
        with a cryptographically invalid contribution, sessions it failed by a timeout this
        wallet's node observed]. Only our node's own evidence counts (docs/sessions.md,
        "Blame"); entries stored before the split count their failures as timeouts."""
        return {k: _three(v) for k, v in self.get_storage(wallet).get("observed", {}).items()}

    def _observe(self, wallet, what: str, state) -> None:
        """Our own record of co-signers, from sessions we took part in (not what they claim)."""
        from .app import RequestEvent
        if what not in (RequestEvent.SIGNED, RequestEvent.FAILED):
            return
        storage = self.get_storage(wallet)
        seen = dict(storage.get("observed", {}))
        cosigner = self.cosigners.get(id(wallet))
        mine = cosigner.pubkey if cosigner is not None else None
        targets = observed_slots(what, state, mine)
        for key, slot in targets:
            counts = _three(seen.get(key.hex(), []))
            counts[slot] += 1
            seen[key.hex()] = counts
        if targets:
            storage["observed"] = seen

    def _notify(self, wallet, what: str, state) -> None:
        try:
            self._observe(wallet, what, state)
        except Exception as exc:
            get_logger(__name__).info(f"recording observed reputation: {exc!r}")
        for listener in list(self.listeners):
            try:
                listener(wallet, what, state)
            except Exception as exc:
                get_logger(__name__).info(f"request listener failed: {exc!r}")

    def on_close(self) -> None:
        """Plugin disabled or Electrum closing: drop nonces, stop nodes and following outputs."""
        for signer in self._signers.values():
            signer.forget()
        self._signers.clear()
        for key, cosigner in list(self.cosigners.items()):
            wallet = self._wallets.get(key)
            if wallet is not None:
                self._stop_soon(cosigner, wallet)
        self.cosigners.clear()
        self.node = None
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            try:
                loop = watcher.network.asyncio_loop
                asyncio.run_coroutine_threadsafe(watcher.stop(), loop)
            except Exception as exc:   # closing must not fail because the network is gone
                get_logger(__name__).info(f"stopping the output watcher: {exc!r}")

    def storage(self, wallet: "Abstract_Wallet") -> dict:
        return self.get_storage(wallet)

    def vaults(self, wallet: "Abstract_Wallet") -> VaultStore:
        return VaultStore(self.get_storage(wallet))

    def participant_key(self, wallet: "Abstract_Wallet", password: Optional[str]) -> ParticipantKey:
        """The wallet's participant key; derived (with the password) once, then cached."""
        return ensure_participant_key(wallet, self.get_storage(wallet), password)

    def cached_participant_key(self, wallet: "Abstract_Wallet") -> Optional[ParticipantKey]:
        return cached_participant_key(wallet, self.get_storage(wallet))

    def participant_key_state(self, wallet: "Abstract_Wallet") -> tuple[Optional[ParticipantKey], str]:
        """The wallet's participant key if it can be known without asking, and a sentence for
        the user saying whether it is known and, if not, what to do.

        WHY derive here: the path is hardened, so the public key needs the private keystore;
        an unencrypted wallet (or one the daemon holds unlocked) gives it without any password,
        so a status that answered "null" there only looked broken.
        """
        from .wallet_bridge import BridgeError
        try:
            key = self.cached_participant_key(wallet)
        except BridgeError as exc:
            return None, f"unsupported: {type(exc).__name__}: {exc}"
        if key is not None:
            return key, "known"
        password = None
        if wallet.has_keystore_encryption():
            unlocked = getattr(wallet, "get_unlocked_password", None)
            password = unlocked() if unlocked is not None else None
            if not password:
                return None, ("locked: the wallet is encrypted; run musig2_plugin_participant_key "
                              "with the wallet password (--password) once, then it is remembered")
        try:
            key = self.participant_key(wallet, password)
        except BridgeError as exc:
            return None, f"unavailable: {type(exc).__name__}: {exc}"
        try:
            wallet.save_db()
        except Exception as exc:       # the key is known for this session anyway
            get_logger(__name__).info(f"saving the participant key: {exc!r}")
        return key, "known"

    def psbt_signer(self, wallet: "Abstract_Wallet", password: Optional[str]) -> PsbtSigner:
        key = self.participant_key(wallet, password)
        signer = self._signers.get(id(wallet))
        if signer is None or signer.pubkey != key.pubkey:
            # No default secret: round 2 is given one per call, so no password is kept here.
            signer = PsbtSigner(key.pubkey, _no_secret)
            self._signers[id(wallet)] = signer
        return signer

    def participant_secret(self, wallet: "Abstract_Wallet", password: Optional[str]) -> bytes:
        return participant_secret_checked(wallet, self.get_storage(wallet), password)

    async def build_spend_request(self, wallet: "Abstract_Wallet", password: Optional[str],
                                  payees: list[tuple[str, int]], *,
                                  from_refs: Optional[list[str]] = None,
                                  fee_sats: Optional[int] = None,
                                  feerate_sat_vb: Optional[float] = None,
                                  change_address: Optional[str] = None):
        """The spend PSBT of this wallet's MuSig2 coins (commands and the Qt spend dialog)."""
        from .wallet_bridge import NoCoins, Offline, build_spend
        me = self.participant_key(wallet, password).pubkey
        vaults = self.vaults(wallet)
        chosen = [vaults.find(r) for r in from_refs] if from_refs else vaults.all()
        chosen = [s for s in chosen if s.output.signer_index_of(me) is not None]
        watcher = self.watcher
        if watcher is None:
            raise Offline("this wallet is offline: MuSig2 outputs are not being followed")
        for s in chosen:
            watcher.watch(s.output)
        await watcher.wait_synced(timeout=30)
        coins = [c for s in chosen for c in watcher.coins(s.output)]
        if not coins:
            raise NoCoins("the chosen MuSig2 outputs hold no coins")
        return build_spend(coins, payees, fee_sats=fee_sats, feerate_sat_vb=feerate_sat_vb,
                           change_address=change_address or wallet.get_receiving_address(),
                           locktime=max(0, wallet.adb.get_local_height()))

    def watch_output(self, output) -> None:
        if self.watcher is not None:
            self.watcher.watch(output)

    # --- identity -------------------------------------------------------------------------
    @property
    def version(self) -> Optional[str]:
        """The version of the installed zip, read from its manifest through Electrum.

        Read from Electrum's metadata rather than a constant in code so that the number the
        user saw when authorizing the zip is the number we report.
        """
        metadata = self.parent.get_metadata(self.name)
        return metadata.version if metadata is not None else None

    # --- settings -------------------------------------------------------------------------
    def is_node_enabled(self) -> bool:
        return self.config.MUSIG2_NODE_ENABLED

    def set_node_enabled(self, enabled: bool) -> None:
        """Persist the user's choice; the node layer starts or stops the node on this value."""
        if not isinstance(enabled, bool):
            raise TypeError(f"node_enabled must be a bool, got {type(enabled).__name__}")
        self.config.MUSIG2_NODE_ENABLED = bool(enabled)

    def is_node_running(self) -> bool:
        if any(c.is_running() for c in getattr(self, "cosigners", {}).values()):
            return True
        return self.node is not None and bool(self.node.is_running())

    # --- reporting ------------------------------------------------------------------------
    def status(self, wallet: Optional["Abstract_Wallet"] = None,
               loaded_wallets: Optional[list["Abstract_Wallet"]] = None) -> dict[str, Any]:
        """A JSON-ready summary for ``musig2_plugin_status`` and the settings dialog.

        ``wallet`` is the one the caller named; without it we report the only loaded wallet, if
        exactly one is loaded, since that is the one any wallet command would act on.
        """
        loaded = list(loaded_wallets or [])
        if wallet is None and len(loaded) == 1:
            wallet = loaded[0]
        return {
            "plugin": self.name,
            "version": self.version,
            "electrum_version": ELECTRUM_VERSION,
            "node_enabled": self.is_node_enabled(),
            "node_running": self.is_node_running(),
            "crypto_backend": self.crypto_backend,
            "crypto_problem": self.crypto_problem,
            "wallet": wallet.basename() if wallet is not None else None,
            "loaded_wallets": sorted(w.basename() for w in loaded),
            "network": self.network_settings_status(),
            "proxy_policy": self.network_status(),
        }

    def network_settings_status(self) -> dict[str, Any]:
        """How a node of this Electrum would listen and what it would publish (the settings;
        a running node's ``reach`` says what it actually does)."""
        try:
            chain = self.chain()
            reach = self.reach_settings()
            boot = self.bootstrap_peers()
        except Exception as exc:            # an unknown network or a bad setting: say which
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"chain": chain.name, "listen_host": reach.listen_host,
                "listen_port": reach.port if reach.port is not None else chain.default_port,
                "public_host": reach.public_host, "public_port": reach.public_port,
                "bootstrap": [f"{h}:{p}" for h, p in boot],
                "default_bootstrap": [f"{h}:{p}" for h, p in chain.default_bootstrap]}

    def _listen_and_public_host(self) -> tuple[str, Optional[str]]:
        try:
            reach = self.reach_settings()
            return reach.listen_host, reach.public_host
        except Exception:
            return str(self.config.MUSIG2_LISTEN_HOST), None

    def network_status(self) -> dict[str, Any]:
        """The proxy policy's verdict: the path the node would take, or why it is refused."""
        from .network_settings import describe
        return describe(self.config, *self._listen_and_public_host())

    def set_network(self, *, mode: Optional[str] = None, proxy: Optional[str] = None,
                    tor_control: Optional[str] = None) -> dict[str, Any]:
        """Save the plugin's network mode / own proxy / Tor control port after the leak check
        (refused: unchanged)."""
        from .network_settings import save_network_settings
        save_network_settings(self.config, *self._listen_and_public_host(),
                              mode=mode, proxy=proxy, control=tor_control)
        return self.network_status()

    def requires_settings(self) -> bool:
        return True


def observed_slots(what: str, state, mine: bytes | None) -> list[tuple[bytes, int]]:
    """Which co-signer's count a finished request raises, and which slot (see
    ``observed_reputation``): every other participant's "signed" on success; on failure only
    the culprits our own node blamed, by the kind of its evidence."""
    from .app import Evidence, RequestEvent
    if what == RequestEvent.SIGNED:
        return [(k, 0) for k in state.record.keys if k != mine]
    evidence = getattr(state, "evidence", {})
    return [(k, 1 if evidence.get(k) == Evidence.INVALID else 2)
            for k in getattr(state, "culprits", ()) if k != mine]


def _three(counts) -> list[int]:
    """[signed, failed: invalid, failed: timeout]; a stored [signed, failed] pair predates
    the split and keeps its failures as timeouts (the weaker claim)."""
    counts = [int(c) for c in counts]
    if len(counts) == 2:
        return [counts[0], 0, counts[1]]
    return (counts + [0, 0, 0])[:3]
