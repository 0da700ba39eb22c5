"""DHT topic keys: where records of a kind are stored and looked up.

A topic is a 160-bit kademlia key derived by a tagged hash, so topics of
different purposes can never collide and nobody can pick a topic that lands
on an arbitrary node id without grinding a hash. Every topic hashes the chain
id in first: nodes of several chains may share one DHT, yet each chain's
signers and requests live under their own keys (a mainnet wallet looks where
only mainnet records belong).

Signer topics are sharded: the advertisements of one transaction type are
spread over ``SIGNER_TOPIC_SHARDS`` topics, chosen by a hash of the owner's
x-only key, so no k nodes carry a whole market and each shard's bound
(``DHT_MAX_RECORDS_PER_TOPIC``) limits one slice of it only. A searcher
samples shards until it has enough matches; looking one signer up needs only
its shard (``signer_topic``). ``shard_of`` is the single place that maps an
owner to its shard.
"""
from __future__ import annotations

from ..crypto import tagged_hash
from ..foundation import constants as C
from ..foundation.chain import Chain, chain_id_of
from .errors import InvalidField
from .fields import TxType, tx_type


def _xonly(pubkey: bytes) -> bytes:
    if not isinstance(pubkey, (bytes, bytearray)) or len(pubkey) not in (32, 33):
        raise InvalidField("participant key must be 33 (compressed) or 32 (x-only) bytes")
    return bytes(pubkey[-32:])


def shard_of(owner: bytes) -> int:
    """The signer-topic shard of an owner key (33-byte or x-only; both parities agree)."""
    digest = tagged_hash(C.TOPIC_TAG_SIGNER_SHARD, _xonly(owner))
    return int.from_bytes(digest[:4], "big") % C.SIGNER_TOPIC_SHARDS


def topic_for_type(kind: "TxType | str", chain: "Chain | bytes", shard: int) -> bytes:
    """Shard ``shard`` of the topic of ``chain``'s signers accepting transaction type ``kind``."""
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < C.SIGNER_TOPIC_SHARDS:
        raise InvalidField(f"signer shard must be in [0, {C.SIGNER_TOPIC_SHARDS})")
    return tagged_hash(C.TOPIC_TAG_SIGNERS, chain_id_of(chain) + tx_type(kind).value.encode()
                       + shard.to_bytes(2, "big"))[:C.TOPIC_LEN]


def signer_topic(kind: "TxType | str", owner: bytes, chain: "Chain | bytes") -> bytes:
    """Where ``owner`` advertises (and withdraws) for ``kind`` on ``chain``."""
    return topic_for_type(kind, chain, shard_of(owner))


def signer_topics(owner: bytes, chain: "Chain | bytes") -> tuple[bytes, ...]:
    """Every type's topic in ``owner``'s shard (where its ads and withdrawals may live)."""
    shard = shard_of(owner)
    return tuple(topic_for_type(t, chain, shard) for t in TxType)


def type_topics(kind: "TxType | str", chain: "Chain | bytes") -> tuple[bytes, ...]:
    """All shards of ``kind`` on ``chain``, in shard order."""
    return tuple(topic_for_type(kind, chain, s) for s in range(C.SIGNER_TOPIC_SHARDS))


def topic_for_requests(pubkey: bytes, chain: "Chain | bytes") -> bytes:
    """Signing requests of ``chain`` addressed to participant ``pubkey`` (33-byte or x-only).

    Derived from the x-only key so both parities of one key meet at one topic.
    """
    return tagged_hash(C.TOPIC_TAG_REQUESTS, chain_id_of(chain) + _xonly(pubkey))[:C.TOPIC_LEN]
