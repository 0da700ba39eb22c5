"""Chain-backed Electrum-edge tests: real bitcoind + ElectrumX + Electrum daemons with the plugin."""
from tests.harness.fixtures import *  # noqa: F401,F403
