"""The wallet's MuSig2 participant key, derived from its own seed.

Where the key comes from (documented in docs/electrum-edge.md):

    participant key = <keystore xprv> / 327' / 0'

* It hangs under the node Electrum already keeps encrypted in the wallet file (the
  keystore xprv: the seed's root for "standard" Electrum seeds, m/0' for segwit
  seeds, the account node m/84'/0'/0' etc. for BIP-39 wallets), so a restore from
  the same seed (and, for BIP-39, the same derivation path) recovers the key,
  exactly like Electrum's own lightning key (<keystore xprv>/67').
* Both steps are hardened: the wallet's xpub is shared with watch-only copies and
  Electrum servers see its addresses; a non-hardened child secret together with
  the parent xpub would reveal the parent xprv, and a non-hardened child public
  key would be linkable to the wallet by anyone holding the xpub.
* 327 is the MuSig2 BIP number and a child index Electrum never uses under a
  keystore node (it uses 0 and 1 for receive/change chains and 67' for
  lightning). The last level is a key version so a user can rotate later.

The secret is only ever derived on demand, with the wallet password, and handed
to the signer; only the public key is cached in the plugin's wallet storage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, MutableMapping, Optional

from electrum.bip32 import BIP32_PRIME, BIP32Node
from electrum.keystore import BIP32_KeyStore, Hardware_KeyStore, Old_KeyStore
from electrum.util import InvalidPassword
from electrum.wallet import Abstract_Wallet, Imported_Wallet, Multisig_Wallet, Standard_Wallet

from ..foundation.constants import PARTICIPANT_KEY_PURPOSE, PARTICIPANT_KEY_VERSION
from .errors import PasswordRequired, StoredKeyMismatch, UnsupportedWallet, WrongPassword

PARTICIPANT_PATH: tuple[int, ...] = (BIP32_PRIME | PARTICIPANT_KEY_PURPOSE,
                                     BIP32_PRIME | PARTICIPANT_KEY_VERSION)
PARTICIPANT_PATH_STR = f"{PARTICIPANT_KEY_PURPOSE}h/{PARTICIPANT_KEY_VERSION}h"
_STORAGE_KEY = "participant_key"


@dataclass(frozen=True)
class ParticipantKey:
    """Public facts about the wallet's participant key (safe to store and show)."""
    pubkey: bytes                 # 33-byte compressed, the MuSig2 participant key
    keystore_xpub: str            # the keystore node it was derived from (binds cache to wallet)
    path: str = PARTICIPANT_PATH_STR

    def to_dict(self) -> dict[str, str]:
        return {"pubkey": self.pubkey.hex(), "keystore_xpub": self.keystore_xpub, "path": self.path}


def _signing_keystore(wallet: Abstract_Wallet) -> BIP32_KeyStore:
    """The keystore that holds the seed-derived xprv, or a clear 'not supported yet'."""
    if isinstance(wallet, Multisig_Wallet):
        raise UnsupportedWallet("multisig wallets are not supported yet: use a standard wallet")
    if isinstance(wallet, Imported_Wallet):
        raise UnsupportedWallet("wallets of imported keys or addresses have no seed to derive a "
                                "participant key from: not supported yet")
    if not isinstance(wallet, Standard_Wallet):
        raise UnsupportedWallet(f"wallet type {wallet.wallet_type!r} is not supported yet")
    ks = wallet.get_keystore()
    if isinstance(ks, Hardware_KeyStore):
        raise UnsupportedWallet("hardware wallets are not supported yet: the participant key "
                                "and MuSig2 nonces would have to live on the device")
    if isinstance(ks, Old_KeyStore):
        raise UnsupportedWallet("wallets from pre-2.0 Electrum seeds are not supported yet")
    if not isinstance(ks, BIP32_KeyStore):
        raise UnsupportedWallet(f"keystore type {type(ks).__name__} is not supported yet")
    if wallet.is_watching_only() or ks.is_watching_only():
        raise UnsupportedWallet("watch-only wallets cannot sign: not supported")
    return ks


def check_supported(wallet: Abstract_Wallet) -> None:
    """Raise UnsupportedWallet unless this wallet can have a participant key."""
    _signing_keystore(wallet)


def _participant_node(wallet: Abstract_Wallet, password: Optional[str]) -> tuple[BIP32Node, str]:
    ks = _signing_keystore(wallet)
    if wallet.has_keystore_encryption() and not password:
        raise PasswordRequired("this wallet is encrypted: the participant key needs its password")
    try:
        ks.check_password(password)
        xprv = ks.get_master_private_key(password)
    except InvalidPassword as exc:
        raise WrongPassword("wrong wallet password") from exc
    node = BIP32Node.from_xkey(xprv).subkey_at_private_derivation(PARTICIPANT_PATH)
    return node, ks.get_master_public_key()


def participant_secret(wallet: Abstract_Wallet, password: Optional[str]) -> bytes:
    """The 32-byte participant secret. Callers use it and drop it: never store it."""
    node, _ = _participant_node(wallet, password)
    return node.eckey.get_secret_bytes()


def derive_participant_key(wallet: Abstract_Wallet, password: Optional[str]) -> ParticipantKey:
    """Derive the public participant key (needs the password: the path is hardened)."""
    node, xpub = _participant_node(wallet, password)
    return ParticipantKey(pubkey=node.eckey.get_public_key_bytes(compressed=True),
                          keystore_xpub=xpub)


def cached_participant_key(wallet: Abstract_Wallet,
                           storage: MutableMapping[str, Any]) -> Optional[ParticipantKey]:
    """The participant key remembered in plugin storage, if it belongs to this wallet.

    WHY the xpub check: storage travels with the wallet file, but a copied or
    tampered file must not make us advertise a key this seed cannot sign for.
    """
    check_supported(wallet)
    rec = storage.get(_STORAGE_KEY)
    if not rec:
        return None
    xpub = wallet.get_keystore().get_master_public_key()
    if rec.get("keystore_xpub") != xpub or rec.get("path") != PARTICIPANT_PATH_STR:
        raise StoredKeyMismatch("the cached participant key belongs to another keystore")
    try:
        pub = bytes.fromhex(rec["pubkey"])
    except (KeyError, ValueError, TypeError) as exc:
        raise StoredKeyMismatch("the cached participant key is unreadable") from exc
    if len(pub) != 33 or pub[0] not in (2, 3):
        raise StoredKeyMismatch("the cached participant key is not a compressed public key")
    return ParticipantKey(pubkey=pub, keystore_xpub=xpub)


def ensure_participant_key(wallet: Abstract_Wallet, storage: MutableMapping[str, Any],
                           password: Optional[str]) -> ParticipantKey:
    """Return the cached key or derive (with the password) and cache its public part."""
    cached = cached_participant_key(wallet, storage)
    if cached is not None:
        return cached
    key = derive_participant_key(wallet, password)
    storage[_STORAGE_KEY] = key.to_dict()
    return key


def participant_secret_checked(wallet: Abstract_Wallet, storage: MutableMapping[str, Any],
                               password: Optional[str]) -> bytes:
    """The secret, refusing if it does not match the key we advertised from storage."""
    cached = cached_participant_key(wallet, storage)
    node, _ = _participant_node(wallet, password)
    if cached is not None and node.eckey.get_public_key_bytes(compressed=True) != cached.pubkey:
        raise StoredKeyMismatch("the cached participant key is not derived from this seed")
    return node.eckey.get_secret_bytes()
