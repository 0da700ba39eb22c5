"""BIP-327 MuSig2 and BIP-340 over libsecp256k1; never imports Electrum."""
from .bip340 import (parse_xonly, plain_pubkey, schnorr_sign, schnorr_verify,
                     tagged_hash, xonly_pubkey)
from .bip328 import Bip328Node, bip328_derive, bip328_xpub
from . import backend                     # which libsecp256k1 binding runs, and what it lacks
from .backend import require_musig
from .ecdh import ecdh, new_secret_key
from .errors import (BlameError, CryptoError, InvalidAggNonce, InvalidMessageLength,
                     InvalidPartialSig, InvalidPubNonce, InvalidPublicKey, InvalidSecretKey,
                     InvalidTweak, LibraryRefusal, NonceReuseError)
from .musig import (KeyAggContext, SecretNonce, SigningSession, key_sort, nonce_agg,
                    nonce_gen, parse_partial_sig, parse_pubkey, parse_pubnonce)

__all__ = [
    "parse_xonly", "plain_pubkey", "schnorr_sign", "schnorr_verify", "tagged_hash",
    "xonly_pubkey", "Bip328Node", "bip328_derive", "bip328_xpub", "BlameError", "CryptoError",
    "InvalidAggNonce", "InvalidMessageLength", "InvalidPartialSig", "InvalidPubNonce",
    "InvalidPublicKey", "InvalidSecretKey", "InvalidTweak", "LibraryRefusal", "NonceReuseError",
    "KeyAggContext", "SecretNonce", "SigningSession", "key_sort", "nonce_agg", "nonce_gen",
    "parse_partial_sig", "parse_pubkey", "parse_pubnonce", "backend", "require_musig", "ecdh",
    "new_secret_key",
]
