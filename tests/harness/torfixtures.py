"""pytest fixtures for the private Tor network: one network per test session.

Why session scope: bringing a network up costs about 20-25 s (docs/tor.md); every Tor test of a
session shares it, and each adds the clients and onion services it needs.  When tor is missing
the fixture fails with the set-up step's one line (never a skip).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from . import procs
from .tornet import PrivateTorNetwork, TorNetError

__all__ = ["tor_network", "pytest_sessionfinish"]


@pytest.fixture(scope="session")
def tor_network() -> Iterator[PrivateTorNetwork]:
    """3 authorities, 2 middle relays, 2 loopback-only exits; stopped at session end."""
    reason = None
    net: PrivateTorNetwork | None = None
    try:
        net = PrivateTorNetwork().start()
    except TorNetError as exc:
        reason = str(exc)
    if reason is not None or net is None:
        pytest.fail(reason or "private Tor network did not start", pytrace=False)
    try:
        yield net
    finally:
        net.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Whatever a test started and did not stop is stopped now (tor processes included)."""
    procs.stop_all()
