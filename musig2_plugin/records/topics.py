"""DHT topic keys: where records of a kind are stored and looked up.

A topic is a 160-bit kademlia key derived by a tagged hash, so topics of
different purposes can never collide and nobody can pick a topic that lands
on an arbitrary node id without grinding a hash.
"""
from __future__ import annotations

from ..foundation import constants as C
from ..crypto import tagged_hash
from .errors import InvalidField
from .fields import TxType, tx_type


def topic_for_type(kind: "TxType | str") -> bytes:
    """Signers accepting transaction type ``kind`` advertise (and withdraw) here."""
    return tagged_hash(C.TOPIC_TAG_SIGNERS, tx_type(kind).value.encode())[:C.TOPIC_LEN]


def topic_for_requests(pubkey: bytes) -> bytes:
    """Signing requests addressed to participant ``pubkey`` (33-byte or x-only) are stored here.

    Derived from the x-only key so both parities of one key meet at one topic.
    """
    if not isinstance(pubkey, (bytes, bytearray)) or len(pubkey) not in (32, 33):
        raise InvalidField("participant key must be 33 (compressed) or 32 (x-only) bytes")
    xonly = bytes(pubkey[-32:])
    return tagged_hash(C.TOPIC_TAG_REQUESTS, xonly)[:C.TOPIC_LEN]


def all_signer_topics() -> tuple[bytes, ...]:
    return tuple(topic_for_type(t) for t in TxType)
