"""The wallet bridge: everything between a MuSig2 signature and an Electrum wallet.

Participant keys from the wallet's seed, MuSig2 outputs with their descriptor and
address, PSBTs with BIP-373 fields, sighashes by Electrum's own code, the
co-signer's review of a request, finalization and broadcast. This is the only
package besides the GUI/commands that imports Electrum.
"""
from .errors import *  # noqa: F401,F403  (typed errors are part of the API)
from .descriptor import add_checksum, descriptor_checksum, musig_descriptor, parse_musig_descriptor
from .musig_output import MusigOutput
from .participant import (PARTICIPANT_PATH, PARTICIPANT_PATH_STR, ParticipantKey,
                          cached_participant_key, check_supported, derive_participant_key,
                          ensure_participant_key, participant_secret, participant_secret_checked)
from .spend import (MusigCoin, SpendReview, attach_signature, broadcast, build_spend,
                    check_input_info, finalize, keypath_sighash, musig_inputs, parse_psbt,
                    psbt_base64, review_spend, sighashes)
from .psbt_signer import PsbtSigner, aggregate_all, aggregate_input
from .combine import MAX_COMBINED_PSBTS, combine_psbts
from .vaults import StoredOutput, UnknownOutput, VaultStore, VaultWatcher
from .recovery_tree import RecoveryPolicy
from .recovery_spend import (build_recovery_spend, check_mature, finalize_recovery,
                             recovery_height, recovery_inputs, recovery_status, review_recovery,
                             script_path_sighash, sign_recovery)
from .recovery_import import create_output as create_recovery_output, import_output
from .psbt_taptree import add_own_derivation
