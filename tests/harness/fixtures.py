"""pytest fixtures for the regtest chain: thin wrappers over tests/harness/chain.py and wallets.py.

Use from a conftest.py with ``from tests.harness.fixtures import *`` or load as a plugin with
``-p tests.harness.fixtures``.  When the node cannot be prepared, the fixture fails the test with
the set-up step's one line (never a skip: a CI without a node must go red, not green).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from . import procs
from .chain import ChainSetupError, RegtestChain
from .wallets import ChainWallet, start_wallets, stop_wallets

__all__ = ["regtest_chain", "electrum_wallets", "pytest_sessionfinish"]


@pytest.fixture(scope="session")
def regtest_chain() -> Iterator[RegtestChain]:
    """bitcoind + ElectrumX for the whole session, miner wallet funded, stopped at the end."""
    chain = RegtestChain()
    reason = None
    try:
        chain.start()
    except ChainSetupError as exc:
        reason = str(exc)  # failed outside the except block: the one line, no chained traceback
    if reason is not None:
        pytest.fail(reason, pytrace=False)
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture
def electrum_wallets(regtest_chain: RegtestChain) -> Iterator[Callable[..., list[ChainWallet]]]:
    """Factory: ``electrum_wallets(n, names=None, plugin_zip=None, venvs=None)`` -> n started daemons+wallets,
    each connected only to the session's ElectrumX; all stopped when the test ends."""
    started: list[ChainWallet] = []

    def make(count: int, *, names: Sequence[str] | None = None, plugin_zip: Path | None = None,
             venvs: Sequence[Path | None] | None = None) -> list[ChainWallet]:
        wallets = start_wallets(regtest_chain, count, names=names, plugin_zip=plugin_zip, venvs=venvs)
        started.extend(wallets)
        return wallets

    try:
        yield make
    finally:
        stop_wallets(started)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last line of defence inside pytest: whatever a test started and did not stop, stop it now."""
    procs.stop_all()
