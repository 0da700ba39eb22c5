"""Participant key derivation from real Electrum wallets (seed, restore, password, refusals)."""
from __future__ import annotations

import hashlib
import hmac
import unicodedata

import pytest
from coincurve import PrivateKey

from musig2_plugin.wallet_bridge import (PARTICIPANT_PATH_STR, PasswordRequired, StoredKeyMismatch,
                                         UnsupportedWallet, WrongPassword, cached_participant_key,
                                         derive_participant_key, ensure_participant_key,
                                         participant_secret, participant_secret_checked)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _ckd_hardened(k: bytes, c: bytes, i: int) -> tuple[bytes, bytes]:
    """BIP-32 CKDpriv for a hardened index, written out here as an independent check."""
    digest = hmac.new(c, b"\x00" + k + (i | 0x80000000).to_bytes(4, "big"), hashlib.sha512).digest()
    child = (int.from_bytes(digest[:32], "big") + int.from_bytes(k, "big")) % N
    return child.to_bytes(32, "big"), digest[32:]


def _independent_participant_pubkey(seed_words: str, passphrase: str = "") -> bytes:
    # Electrum "segwit" seed: BIP-32 root from PBKDF2(seed, "electrum"+passphrase),
    # keystore node m/0'; participant key = keystore/327'/0'.
    words = " ".join(unicodedata.normalize("NFKD", seed_words).lower().split())
    bip32_seed = hashlib.pbkdf2_hmac("sha512", words.encode(), b"electrum" + passphrase.encode(), 2048)
    digest = hmac.new(b"Bitcoin seed", bip32_seed, hashlib.sha512).digest()
    k, c = digest[:32], digest[32:]
    for i in (0, 327, 0):
        k, c = _ckd_hardened(k, c, i)
    return PrivateKey(k).public_key.format(compressed=True)


def test_key_matches_documented_path_and_survives_restore(wallets):
    w, seed = wallets.new(password="pw")
    key = derive_participant_key(w, "pw")
    assert key.path == PARTICIPANT_PATH_STR == "327h/0h"
    assert key.pubkey == _independent_participant_pubkey(seed)
    restored = wallets.restore(seed, password="another password")
    assert derive_participant_key(restored, "another password").pubkey == key.pubkey
    secret = participant_secret(w, "pw")
    assert PrivateKey(secret).public_key.format(compressed=True) == key.pubkey


def test_distinct_wallets_distinct_keys_and_not_an_address_key(wallets):
    w1, _ = wallets.new()
    w2, _ = wallets.new()
    k1, k2 = derive_participant_key(w1, "pw").pubkey, derive_participant_key(w2, "pw").pubkey
    assert k1 != k2
    # hardened path: none of the wallet's own receive/change keys
    own = {bytes.fromhex(pk) for a in w1.get_addresses() for pk in w1.get_public_keys(a)}
    assert own and k1 not in own


def test_password_required_and_wrong_password(wallets):
    w, _ = wallets.new(password="pw")
    with pytest.raises(PasswordRequired):
        derive_participant_key(w, None)
    with pytest.raises(WrongPassword):
        derive_participant_key(w, "not the password")
    with pytest.raises(WrongPassword):
        participant_secret(w, "PW")


def test_wallet_without_password(wallets):
    w, seed = wallets.new(password=None)
    assert derive_participant_key(w, None).pubkey == _independent_participant_pubkey(seed)


def test_bip39_passphrase_changes_key(wallets):
    w1, seed = wallets.new()
    w2 = wallets.restore(seed, passphrase="extension words")
    assert derive_participant_key(w2, "pw").pubkey == _independent_participant_pubkey(
        seed, "extension words")
    assert derive_participant_key(w2, "pw").pubkey != derive_participant_key(w1, "pw").pubkey


def test_watch_only_refused(wallets):
    w, _ = wallets.new()
    watch = wallets.restore(w.get_keystore().get_master_public_key(), password=None)
    with pytest.raises(UnsupportedWallet, match="watch-only"):
        derive_participant_key(watch, None)


def test_imported_keys_refused(wallets):
    w, _ = wallets.new()
    addr = w.get_receiving_address()
    wif = w.export_private_key(addr, "pw")
    imported = wallets.restore(wif, password="pw")
    with pytest.raises(UnsupportedWallet, match="not supported yet"):
        derive_participant_key(imported, "pw")
    addresses = wallets.restore(addr, password=None)
    with pytest.raises(UnsupportedWallet):
        derive_participant_key(addresses, None)


def test_xprv_wallet_supported(wallets):
    w, _ = wallets.new()
    xprv = w.get_keystore().get_master_private_key("pw")
    from_xprv = wallets.restore(xprv, password="pw2")
    assert derive_participant_key(from_xprv, "pw2").pubkey == derive_participant_key(w, "pw").pubkey


def test_hardware_wallet_refused(wallets):
    """A real Electrum hardware keystore (Ledger's class) built from its stored dict; no device
    is needed because we must refuse before talking to one."""
    from electrum import keystore
    from electrum.plugins.ledger.ledger import Ledger_KeyStore
    w, _ = wallets.new()
    keystore.register_keystore("ledger", Ledger_KeyStore)
    ks = w.get_keystore()
    hw = keystore.hardware_keystore({"type": "hardware", "hw_type": "ledger",
                                     "xpub": ks.get_master_public_key(),
                                     "derivation": "m/84h/0h/0h", "root_fingerprint": "deadbeef",
                                     "label": "test", "soft_device_id": None})
    w.keystore = hw
    with pytest.raises(UnsupportedWallet, match="hardware"):
        derive_participant_key(w, None)


def test_cache_in_storage_and_mismatch(wallets):
    w, _ = wallets.new()
    storage: dict = {}
    assert cached_participant_key(w, storage) is None
    key = ensure_participant_key(w, storage, "pw")
    assert cached_participant_key(w, storage) == key          # no password needed now
    assert ensure_participant_key(w, storage, None) == key
    assert "secret" not in str(storage) and len(storage["participant_key"]["pubkey"]) == 66
    assert participant_secret_checked(w, storage, "pw") == participant_secret(w, "pw")
    # storage copied to another wallet: refused
    other, _ = wallets.new()
    with pytest.raises(StoredKeyMismatch):
        cached_participant_key(other, storage)
    # tampered pubkey under the right xpub: refused at signing time
    storage["participant_key"]["pubkey"] = derive_participant_key(other, "pw").pubkey.hex()
    with pytest.raises(StoredKeyMismatch):
        participant_secret_checked(w, storage, "pw")
    storage["participant_key"]["pubkey"] = "zz"
    with pytest.raises(StoredKeyMismatch):
        cached_participant_key(w, storage)
