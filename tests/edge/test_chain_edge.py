"""The Electrum edge hands the core layers the chain of Electrum's own network."""
from __future__ import annotations

import pytest

from electrum import constants as ec

from musig2_plugin.foundation.chain import UnknownChain, chain_for_network, chain_named
from musig2_plugin.app.cosign import electrum_chain


def test_electrum_networks_map_to_chains_and_mismatches_are_refused():
    for net in (ec.BitcoinMainnet, ec.BitcoinTestnet, ec.BitcoinTestnet4, ec.BitcoinSignet,
                ec.BitcoinRegtest):
        assert chain_for_network(net.NET_NAME, net.GENESIS) is chain_named(net.NET_NAME)
    with pytest.raises(UnknownChain, match="expected"):
        chain_for_network("mainnet", ec.BitcoinTestnet.GENESIS)   # forged/misconfigured network
    with pytest.raises(UnknownChain, match="unknown chain"):
        chain_for_network("simnet", ec.BitcoinSimnet.GENESIS)


def test_the_cosigner_follows_electrums_network():
    saved = ec.net
    try:
        ec.BitcoinTestnet4.set_as_network()
        assert electrum_chain() is chain_named("testnet4")
        ec.BitcoinRegtest.set_as_network()
        assert electrum_chain() is chain_named("regtest")
    finally:
        saved.set_as_network()


def test_a_network_the_plugin_does_not_support_is_one_clear_line():
    """mutinynet shares signet's genesis block; simnet is unknown: the plugin refuses both."""
    from musig2_plugin.app.reach import NodeSettingsError
    from musig2_plugin.plugin import Musig2Plugin
    saved = ec.net
    try:
        for net in (ec.BitcoinSimnet, ec.BitcoinMutinynet):
            net.set_as_network()
            with pytest.raises(NodeSettingsError, match="does not run on this network"):
                Musig2Plugin.chain(object())
    finally:
        saved.set_as_network()
