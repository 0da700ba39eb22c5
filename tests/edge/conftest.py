"""Fixtures for the Electrum edge: real Electrum 4.8 wallets in throwaway directories.

Electrum's wallet code needs its own asyncio loop (running in a thread), as in
Electrum's own unit tests; we start it once per test session, only when a test
asks for a wallet, and stop it at the end.
"""
from __future__ import annotations

import asyncio
import os

import pytest

# No skip when Electrum is missing: these tests must go red, not green (scripts/bootstrap.sh
# installs Electrum 4.8).
from electrum import util  # noqa: E402
from electrum.simple_config import SimpleConfig  # noqa: E402
from electrum.wallet import create_new_wallet, restore_wallet_from_text  # noqa: E402


@pytest.fixture(scope="session")
def electrum_loop():
    if util._asyncio_event_loop is not None:   # someone else's tests already run one
        yield util._asyncio_event_loop
        return
    policy = asyncio.get_event_loop_policy()
    loop, stopping, thread = util.create_and_start_event_loop()
    yield loop
    loop.call_soon_threadsafe(stopping.set_result, 1)
    thread.join(timeout=10)
    asyncio.set_event_loop_policy(policy)


@pytest.fixture
def electrum_config(tmp_path, electrum_loop):
    return SimpleConfig({"electrum_path": str(tmp_path / "electrum")})


class WalletFactory:
    def __init__(self, config, tmp_path):
        self.config = config
        self.dir = tmp_path
        self.n = 0

    def _path(self) -> str:
        self.n += 1
        return os.path.join(self.dir, f"wallet_{self.n}")

    def new(self, *, password: str | None = "pw", seed_type: str = "segwit"):
        """A fresh seed wallet; returns (wallet, seed)."""
        r = create_new_wallet(path=self._path(), config=self.config, password=password,
                              encrypt_file=False, seed_type=seed_type)
        return r["wallet"], r["seed"]

    def restore(self, text: str, *, password: str | None = "pw", passphrase: str | None = None):
        r = restore_wallet_from_text(text, path=self._path(), config=self.config,
                                     password=password, encrypt_file=False,
                                     passphrase=passphrase)
        return r["wallet"]


@pytest.fixture
def wallets(electrum_config, tmp_path):
    return WalletFactory(electrum_config, tmp_path)


@pytest.fixture(scope="module")
def module_wallets(tmp_path_factory, electrum_loop):
    """Wallets shared by one test module (creating an Electrum wallet takes about a second)."""
    d = tmp_path_factory.mktemp("wallets")
    return WalletFactory(SimpleConfig({"electrum_path": str(d / "electrum")}), d)
