"""Protocol constants and bounds, in one place.

Every tag, version byte, size cap and timeout the plugin's layers share lives
here so a reviewer can audit the limits we impose on peers at a glance.
Sections: crypto, records, dht, transport, session, electrum edge.
"""
from __future__ import annotations

PLUGIN_NAME = "musig2_plugin"
PROTOCOL_VERSION = 1

# --- crypto -----------------------------------------------------------------
MESSAGE_LEN = 32            # libsecp256k1's MuSig2 signs 32-byte messages only
MAX_SIGNERS = 100           # hard ceiling for one key aggregation (session cap is lower)
PUBKEY_LEN = 33             # MuSig2 participant keys: compressed SEC1 points
XONLY_LEN = 32              # BIP-340 / aggregate output keys
PUBNONCE_LEN = 66           # two compressed points R1 || R2
AGGNONCE_LEN = 66           # like a pubnonce, but each half may be 33 zero bytes (infinity)
PARTIAL_SIG_LEN = 32        # scalar below the group order
SCHNORR_SIG_LEN = 64
# BIP-328: chain code of the synthetic xpub built from an aggregate key
BIP328_CHAINCODE = bytes.fromhex("868087ca02a6f974c4598924c36b57762d32cb45717167e300622c7167e38965")

# --- chain binding ------------------------------------------------------------
CHAIN_ID_TAG = "musig2_plugin/chain-id/v1"   # id = hash(genesis hash, network name)[:CHAIN_ID_LEN]
CHAIN_ID_LEN = 4                    # inside every record, topic and envelope (like a network magic)
#: Fixed default listen port per chain (TCP for peer sessions, UDP for the DHT; the same number),
#: so a node can be bootstrapped from twice and firewalls can be opened once. Changeable.
DEFAULT_PORTS = {"mainnet": 28327, "testnet": 38327, "testnet4": 48327, "signet": 58327,
                 "regtest": 18327}
#: Public bootstrap nodes per chain, "host:port" (the one place they are listed; see
#: docs/network.md "The bootstrap list" for how to add one). Empty where no public node exists
#: yet: a first start then needs a bootstrap setting; later starts use remembered peers.
DEFAULT_BOOTSTRAP: dict[str, tuple[str, ...]] = {
    "mainnet": (), "testnet": (), "testnet4": (), "signet": (), "regtest": ()}

# --- records (tags for BIP-340 tagged hashes of canonical encodings) --------
RECORD_VERSION = 2                  # first byte of every encoded record (2: chain id in the header)
RECORD_TAG_ADVERTISEMENT = "musig2_plugin/record/advertisement/v1"
RECORD_TAG_WITHDRAWAL = "musig2_plugin/record/withdrawal/v1"
RECORD_TAG_SIGNING_REQUEST = "musig2_plugin/record/signing-request/v1"
TOPIC_TAG_SIGNERS = "musig2_plugin/topic/signers/v1"
TOPIC_TAG_REQUESTS = "musig2_plugin/topic/requests/v1"
TOPIC_TAG_SIGNER_SHARD = "musig2_plugin/topic/signer-shard/v1"  # owner key -> shard number
SIGNER_TOPIC_SHARDS = 16            # one type's ads are spread over this many topic keys (by owner key)
TOPIC_LEN = 20                      # kademlia ids are 160 bits
MAX_RECORD_BYTES = 7680             # whole encoded record; a store RPC must fit rpcudp's 8 KiB request cap
MAX_CLOCK_SKEW_S = 120              # created_at may be this far in our future, no more
MIN_TTL_S = 0.2                     # shorter would expire in flight (tests use ~1 s)
MAX_TTL_S = 7 * 24 * 3600           # no record may claim a longer life
ADVERTISEMENT_DEFAULT_TTL_S = 3600
SIGNING_REQUEST_DEFAULT_TTL_S = 24 * 3600
WITHDRAWAL_DEFAULT_TTL_S = 24 * 3600  # outlives any advertisement it buries (owners pick ad TTL <= this)
MAX_MONEY_SAT = 21_000_000 * 100_000_000
MAX_NICKNAME_BYTES = 32
MAX_DESCRIPTION_BYTES = 280
MAX_TRUST_REQUIREMENTS = 8
MAX_TRUST_REQUIREMENT_BYTES = 32
MAX_HOST_BYTES = 253
MAX_RESPONSE_TIME_S = 7 * 24 * 3600
MAX_REPUTATION = 100                # self-reported, 0..100
MAX_REQUEST_KEYS = 16               # participants named by one signing request
MAX_REQUEST_MESSAGES = 50           # 32-byte messages (one sighash per input; = MAX_SPEND_INPUTS)
MAX_REQUEST_PAYLOAD_BYTES = 4096    # opaque (encrypted) transaction payload carried in the record
MAX_FETCHED_PAYLOAD_BYTES = 512 * 1024  # larger payloads stay with the creator (committed by
                                        # SHA-256 + length); > MAX_PSBT_BYTES + encryption overhead
MAX_REQUEST_METADATA_BYTES = 512

# --- dht --------------------------------------------------------------------
DHT_KSIZE = 20
DHT_ALPHA = 3
DHT_RPC_TIMEOUT_S = 2.0
DHT_MAX_RECORDS_PER_TOPIC = 8192    # one slot per owner key (per request for request topics); with
                                    # SIGNER_TOPIC_SHARDS shards one type holds up to 131,072 signers
DHT_SOURCE_SHARE_DIVISOR = 8        # one source group (/24, /48) may hold 1/8 of a topic at a node
DHT_MAX_RECORDS_PER_OWNER = 32      # slots of one owner key in one topic (requests to one key)
DHT_MAX_TOPICS = 20_000
DHT_MAX_TOTAL_RECORDS = 40_000
DHT_MAX_STORE_BYTES = 24 * 1024 * 1024  # encoded bytes held; with per-slot overhead keeps a node < 80 MB
DHT_MAX_RESPONSE_BYTES = 16_384     # records carried by one find_records reply (a UDP datagram)
DHT_MAX_DATAGRAM_BYTES = 24_576     # anything larger is dropped unread
DHT_STORE_RATE_PER_MINUTE = 300     # store attempts accepted per source per minute
DHT_RPC_RATE_PER_SECOND = 200       # datagrams handled per source per second
DHT_MAX_RATE_SOURCES = 4096         # rate-limiter memory bound (oldest sources forgotten)
DHT_MAX_PAGES = 64                  # pages fetched from one peer per lookup
DHT_REPUBLISH_INTERVAL_S = 600
DHT_PRUNE_INTERVAL_S = 30
DHT_UNRESPONSIVE_TTL_S = 30         # skip a contact that just timed out for this long
DHT_COOKIE_ROTATE_S = 300           # address-validation cookie secret lifetime (previous one accepted)
DHT_MAX_OUTSTANDING = 2048          # our RPCs awaiting an answer, in all
DHT_MAX_OUTSTANDING_PER_PEER = 32   # ... and to one address
DHT_MIN_SOFT_TIMEOUT_S = 0.1        # adaptive per-query wait of a walk: srtt + 4 rttvar, clamped
DHT_MAX_SOFT_TIMEOUT_S = 0.25
DHT_LEAVE_NOTIFY = 64               # contacts (closest first) told when a node stops
PEERS_FILE_VERSION = 1              # remembered good peers (like Bitcoin Core's peers.dat)
MAX_REMEMBERED_PEERS = 256          # kept across restarts (newest first)
MAX_PEERS_FILE_BYTES = 64 * 1024    # a larger file is not read (corrupt or not ours)
PEERS_SAVE_INTERVAL_S = 300         # the routing table is saved this often and at stop

# --- transport --------------------------------------------------------------
ENVELOPE_VERSION = 2                           # 2: the chain id is in the signed header
ENVELOPE_TAG = "musig2_plugin/message/v1"      # BIP-340 tagged hash of a protocol message
RPC_MESSAGE = "m2.msg"                         # one signed envelope (hex)
RPC_SIGNING_REQUEST = "m2.request"             # one signed signing-request record (hex)
RPC_PAYLOAD = "m2.payload"                     # signed FETCH envelope -> a chunk of a payload (hex)
RPC_HELLO = "m2.hello"                         # nonce -> the listener's key and its signature
HELLO_TAG = "musig2_plugin/hello/v1"           # hash(chain id, nonce, listener key) it signs
HELLO_NONCE_LEN = 32
PAYLOAD_CHUNK_BYTES = 96 * 1024                # largest payload chunk one answer carries
PAYLOAD_FETCH_TIMEOUT_S = 30.0                 # whole fetch of one committed payload
MAX_ENVELOPE_BODY_BYTES = 64 * 1024            # body of one protocol message

# --- relays (transport/relay.py, docs/network.md) ----------------------------
RPC_RELAY_RESERVE = "m2.relay.reserve"         # client -> relay: signed reservation (hex)
RPC_RELAY_SEND = "m2.relay.send"               # anyone -> relay: [target key, method, argument]
RPC_RELAY_DELIVER = "m2.relay.deliver"         # relay -> client, on the client's own connection
RPC_RELAY_PROBE = "m2.relay.probe"             # inner method: a client's echo through its relay
RPC_RELAY_INFO = "m2.relay.info"               # anyone -> node: {"key": hex, "relay": bool}
RELAY_RESERVATION_VERSION = 1
RELAY_RESERVATION_TAG = "musig2_plugin/relay-reservation/v1"
RELAY_PROBE_TAG = "musig2_plugin/relay-probe/v1"
#: Inner methods a relay passes on; anything else is refused before it reaches the client.
RELAYED_METHODS = (RPC_MESSAGE, RPC_SIGNING_REQUEST, RPC_PAYLOAD, RPC_RELAY_PROBE)

# --- dial-back (transport/dialback.py) -------------------------------------
RPC_DIALBACK = "m2.dialback"                   # node -> peer: "what do you see, and dial me back"
RPC_DIALBACK_CHALLENGE = "m2.dialback.challenge"  # peer -> node, on a fresh connection
DIALBACK_TAG = "musig2_plugin/dialback/v1"
PAYLOAD_VERSION = 1
PAYLOAD_KDF_TAG = "musig2_plugin/payload-key/v1"  # per-recipient wrap key from the ECDH secret
PAYLOAD_AAD_TAG = "musig2_plugin/payload-aad/v1"

# --- session ----------------------------------------------------------------
SESSION_ID_TAG = "musig2_plugin/session-id/v1"        # hash(request id, sorted participant keys)
COORDINATOR_RANK_TAG = "musig2_plugin/coordinator/v1"  # election order: hash(session id, key)
REQUEST_ID_TAG = "musig2_plugin/request-id/v1"

# --- electrum edge ----------------------------------------------------------
# Participant key: <keystore xprv>/327'/0'. Hardened so the wallet's xpub (shared
# with watch-only copies and servers) can neither derive it nor, combined with a
# leaked participant secret, reveal the wallet's xprv. 327 = BIP-327 (MuSig2),
# a child number Electrum itself never uses under a keystore node (it uses 0/1
# for addresses and 67' for lightning); the last level is a key version.
PARTICIPANT_KEY_PURPOSE = 327
PARTICIPANT_KEY_VERSION = 0
MIN_OUTPUT_PARTICIPANTS = 2          # a MuSig2 output of one key is just a P2TR key
MAX_OUTPUT_PARTICIPANTS = 15         # keeps PSBTs, sessions and dialogs small
MAX_SPEND_INPUTS = 50                # inputs of one spend request we will look at
MAX_SPEND_OUTPUTS = 100
MAX_PSBT_BYTES = 400_000             # a PSBT from a peer larger than this is refused
TAPROOT_KEYPATH_WITNESS_SIZE = 66    # item count + length byte + 64-byte signature
# Recovery leaves (docs/recovery.md): N is a BIP-68 relative lock in blocks, 16 bits.
TAPSCRIPT_LEAF_VERSION = 0xC0        # BIP-342 tapscript
RECOVERY_MIN_BLOCKS = 1
RECOVERY_MAX_BLOCKS = 65_535
RECOVERY_DEFAULT_BLOCKS = 4_032      # ~4 weeks: outlasts a holiday, not a lost key
REQUEST_POLL_INTERVAL_S = 20         # the background listener looks in the DHT this often
# An advertise issued while node start's background reachability step (dial-back, relay
# reservation) still runs waits for it at most this long (its own probes time out sooner).
AUTO_REACH_WAIT_S = 90
MAX_TRACKED_REQUESTS = 256           # requests one wallet remembers (oldest inactive evicted)
MAX_OPEN_APPROVAL_DIALOGS = 3        # more incoming requests only notify (no dialog flood)

# --- tor (proxy policy, control port, onion services) -------------------------
TOR_MAX_HOST_LEN = 255               # a proxy / endpoint host name (DNS limit)
TOR_CONTROL_TIMEOUT_S = 30.0         # one control-port exchange (connect, auth, one command)
TOR_CONTROL_MAX_LINE = 8192          # longest control-port reply line we read
TOR_CONTROL_MAX_LINES = 256          # most lines of one control-port reply
TOR_ONION_V3_LEN = 56                # base32 characters of a v3 onion address (without .onion)
TOR_ONION_VIRTUAL_PORT = 7327        # port of our onion service (the node listens on loopback)
TOR_ONION_PUBLISH_TIMEOUT_S = 120.0  # ADD_ONION -> descriptor uploaded to an HSDir, at most
