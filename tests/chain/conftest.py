"""Fixtures of the chain-backed tests (real bitcoind, ElectrumX and Electrum daemons)."""

from tests.harness.fixtures import *  # noqa: F401,F403  (fixtures and the session-end clean-up)
