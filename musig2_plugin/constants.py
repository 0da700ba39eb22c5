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

# --- records (tags for BIP-340 tagged hashes of canonical encodings) --------

# --- dht --------------------------------------------------------------------

# --- transport --------------------------------------------------------------

# --- session ----------------------------------------------------------------

# --- electrum edge ----------------------------------------------------------
