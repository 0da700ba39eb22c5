"""Fixtures of the Tor tests: the session's private Tor network (and the chain for wallet flows)."""

from tests.harness.torfixtures import *  # noqa: F401,F403
