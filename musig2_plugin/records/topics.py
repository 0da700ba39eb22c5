"""DHT topic keys: where records of a kind are stored and looked up.

A topic is a 160-bit kademlia key derived by a tagged hash, so topics of
different purposes can never collide and nobody can pick a topic that lands
on an arbitrary node id without grinding a hash. Every topic hashes the chain
id in first: nodes of several chains may share one DHT, yet each chain's
signers and requests live under their own keys (a mainnet wallet looks where
only mainnet records belong).
"""
from __future__ import annotations

from ..foundation import constants as C
from ..foundation.chain import Chain, chain_id_of
from ..crypto import tagged_hash
from .errors import InvalidField
from .fields import TxType, tx_type


def topic_for_type(kind: "TxType | str", chain: "Chain | bytes") -> bytes:
    """Signers of ``chain`` accepting transaction type ``kind`` advertise (and withdraw) here."""
    return tagged_hash(C.TOPIC_TAG_SIGNERS,
                       chain_id_of(chain) + tx_type(kind).value.encode())[:C.TOPIC_LEN]


def topic_for_requests(pubkey: bytes, chain: "Chain | bytes") -> bytes:
    """Signing requests of ``chain`` addressed to participant ``pubkey`` (33-byte or x-only).

    Derived from the x-only key so both parities of one key meet at one topic.
    """
    if not isinstance(pubkey, (bytes, bytearray)) or len(pubkey) not in (32, 33):
        raise InvalidField("participant key must be 33 (compressed) or 32 (x-only) bytes")
    xonly = bytes(pubkey[-32:])
    return tagged_hash(C.TOPIC_TAG_REQUESTS, chain_id_of(chain) + xonly)[:C.TOPIC_LEN]


def all_signer_topics(chain: "Chain | bytes") -> tuple[bytes, ...]:
    return tuple(topic_for_type(t, chain) for t in TxType)
