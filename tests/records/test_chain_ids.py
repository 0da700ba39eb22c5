"""Chain ids and the chain binding of records and topics, without any network."""
from __future__ import annotations

import pytest

from musig2_plugin.foundation import constants as C
from musig2_plugin.foundation.chain import (KNOWN_CHAINS, MAINNET, REGTEST, SIGNET, TESTNET, TESTNET4, Chain,
                                 UnknownChain, chain_by_id, chain_for_network, chain_named)
from musig2_plugin.crypto import plain_pubkey
from musig2_plugin.records import (Advertisement, InvalidSignature, SigningRequest, Withdrawal,
                                   WrongChain, decode_record, topic_for_requests, topic_for_type)

SK = (11).to_bytes(32, "big")


def test_every_known_chain_has_its_own_id_and_signets_are_told_apart_by_name():
    ids = {c.id for c in KNOWN_CHAINS.values()}
    assert len(ids) == 5 and all(len(i) == C.CHAIN_ID_LEN for i in ids)
    assert [chain_by_id(c.id) for c in (MAINNET, TESTNET, TESTNET4, SIGNET, REGTEST)] == \
        [MAINNET, TESTNET, TESTNET4, SIGNET, REGTEST]
    # Electrum's mutinynet shares signet's genesis block: the name keeps them apart
    assert Chain("mutinynet", SIGNET.genesis_hex).id != SIGNET.id
    assert chain_by_id(b"\x00" * C.CHAIN_ID_LEN) is None
    assert not MAINNET.allows_local_endpoints and REGTEST.allows_local_endpoints


def test_unknown_chains_are_refused():
    with pytest.raises(UnknownChain, match="unknown chain"):
        chain_named("simnet")
    with pytest.raises(UnknownChain, match="expected"):
        chain_for_network("mainnet", TESTNET.genesis_hex)   # a forged/misconfigured network
    with pytest.raises(UnknownChain):
        Chain("x", "zz" * 32)


def test_topics_are_per_chain():
    key = plain_pubkey(SK)
    assert topic_for_type("spend", MAINNET, 0) != topic_for_type("spend", TESTNET, 0)
    assert topic_for_requests(key, REGTEST) != topic_for_requests(key, TESTNET4)
    assert topic_for_type("spend", REGTEST.id, 0) == topic_for_type("spend", REGTEST, 0)
    with pytest.raises(UnknownChain):
        topic_for_type("spend", b"\x01", 0)


def _records(chain):
    ad = Advertisement.create(SK, chain=chain, tx_types="spend", min_amount_sat=0,
                              max_amount_sat=10, host="203.0.113.5", port=9735)
    return (ad, Withdrawal.for_advertisement(SK, ad),
            SigningRequest.create(SK, chain=chain, keys=[plain_pubkey(SK)], messages=[bytes(32)]))


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_a_record_of_another_chain_is_refused_typed(kind):
    record = _records(TESTNET)[kind]
    assert record.chain_id == TESTNET.id and record.topics()[0] not in _records(MAINNET)[kind].topics()
    assert decode_record(record.encode(), chain=TESTNET) == record
    with pytest.raises(WrongChain, match="testnet, not of mainnet"):
        decode_record(record.encode(), chain=MAINNET)
    # relabelling the chain id breaks the owner's signature (the id is signed)
    data = bytearray(record.encode())
    data[2:2 + C.CHAIN_ID_LEN] = MAINNET.id
    with pytest.raises(InvalidSignature):
        decode_record(bytes(data), chain=MAINNET)
