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

# --- records (tags for BIP-340 tagged hashes of canonical encodings) --------

# --- dht --------------------------------------------------------------------

# --- transport --------------------------------------------------------------

# --- session ----------------------------------------------------------------

# --- electrum edge ----------------------------------------------------------
