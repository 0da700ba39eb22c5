"""The discovery DHT: a kademlia node with a validating multi-value record store.

Never imports Electrum. See docs/records-and-dht.md.
"""
from ..records import signer_topic, topic_for_requests, topic_for_type
from .config import DhtConfig
from .discovery import Continuity, Discovery, rank_key
from .node import DhtNode, PublishResult
from .peers import PeersFile
from .republish import OwnRecords
from .store import ACCEPTED, DUPLICATE, STORED, RecordStore

__all__ = ["DhtNode", "DhtConfig", "PeersFile", "Discovery", "Continuity", "PublishResult",
           "signer_topic", "OwnRecords", "RecordStore", "rank_key",
           "topic_for_type", "topic_for_requests", "STORED", "DUPLICATE", "ACCEPTED"]
