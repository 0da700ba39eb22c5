"""Signed records (advertisement, withdrawal, signing request) and their canonical codec.

Never imports Electrum. See docs/records-and-dht.md for the byte layout.
"""
from .advertisement import Advertisement, Withdrawal
from .base import Record, supersedes
from .codec import Reader as RecordReader, Writer as RecordWriter
from .decode import RECORD_KINDS, decode_record, peek_chain, peek_slot
from .errors import (ExpiredRecord, FutureRecord, InvalidField, InvalidSignature,
                     MalformedRecord, OversizedRecord, RecordError, UnknownRecordKind,
                     UnsupportedVersion, WrongChain)
from .fields import Endpoint, Reach, TxType, tx_type
from .request import PayloadRef, SigningRequest
from .topics import (shard_of, signer_topic, signer_topics, topic_for_requests, topic_for_type,
                     type_topics)

__all__ = [
    "Advertisement", "Withdrawal", "RecordReader", "RecordWriter", "SigningRequest", "PayloadRef", "Record", "supersedes", "decode_record",
    "RECORD_KINDS", "peek_slot", "peek_chain", "RecordError", "MalformedRecord", "InvalidField", "UnknownRecordKind",
    "UnsupportedVersion", "OversizedRecord", "InvalidSignature", "ExpiredRecord",
    "FutureRecord", "WrongChain", "Endpoint", "Reach", "TxType", "topic_for_type",
    "topic_for_requests", "all_signer_topics", "tx_type",
    "shard_of", "signer_topic", "signer_topics", "type_topics",
]
