"""BIP-328: BIP-32 public derivation from a MuSig2 aggregate key.

WHY: one set of participant keys should yield many addresses without a new
key aggregation per address.  BIP-328 treats the (untweaked) aggregate key
as the public key of a *synthetic* extended public key -- depth 0, parent
fingerprint 0, child number 0, and a fixed chain code -- and derives children
with ordinary unhardened BIP-32 CKDpub.  Each step adds ``IL·G`` to the key;
we apply the same ``IL`` as a plain tweak to the key-aggregation cache, so the
signers can produce a MuSig2 signature for the derived key.

Only unhardened indices exist here: nobody holds the aggregate secret key.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Sequence

from ..foundation.constants import BIP328_CHAINCODE
from .errors import CryptoError, InvalidTweak
from .musig import KeyAggContext

__all__ = ["bip328_derive", "bip328_xpub", "Bip328Node", "XPUB_VERSION", "TPUB_VERSION"]

XPUB_VERSION = bytes.fromhex("0488b21e")  # mainnet public
TPUB_VERSION = bytes.fromhex("043587cf")  # testnet/regtest/signet public
_HARDENED = 0x80000000
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    num = int.from_bytes(data, "big")
    out = []
    while num:
        num, rem = divmod(num, 58)
        out.append(_B58[rem])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


class Bip328Node:
    """A node of the synthetic xpub tree: key-aggregation context + BIP-32 metadata."""

    __slots__ = ("keyagg", "chaincode", "depth", "parent_fingerprint", "child_number")

    def __init__(self, keyagg: KeyAggContext, chaincode: bytes, depth: int,
                 parent_fingerprint: bytes, child_number: int):
        self.keyagg = keyagg
        self.chaincode = chaincode
        self.depth = depth
        self.parent_fingerprint = parent_fingerprint
        self.child_number = child_number

    @classmethod
    def root(cls, keyagg: KeyAggContext) -> "Bip328Node":
        if keyagg.tweaks:
            raise InvalidTweak("BIP-328 starts from the untweaked aggregate key")
        return cls(keyagg, BIP328_CHAINCODE, 0, b"\x00" * 4, 0)

    @property
    def pubkey(self) -> bytes:
        return self.keyagg.aggregate_pubkey()

    def child(self, index: int) -> "Bip328Node":
        """CKDpub: I = HMAC-SHA512(c, K || ser32(i)); K_i = K + IL·G; c_i = IR."""
        if not isinstance(index, int) or not 0 <= index < _HARDENED:
            raise CryptoError("BIP-328 derivation is unhardened only (0 <= index < 2^31)")
        parent = self.pubkey
        digest = hmac.new(self.chaincode, parent + index.to_bytes(4, "big"), hashlib.sha512).digest()
        il, ir = digest[:32], digest[32:]
        if int.from_bytes(il, "big") >= _ORDER:
            # BIP-32: "proceed with the next value for i" -- the caller's choice; p ~ 2^-127.
            raise InvalidTweak(f"index {index} yields an invalid child (IL >= n); use the next index")
        child = self.keyagg.with_tweak(il, xonly=False)  # raises InvalidTweak on infinity
        return Bip328Node(child, ir, self.depth + 1, _hash160(parent)[:4], index)

    def derive(self, path: Sequence[int]) -> "Bip328Node":
        node = self
        for index in path:
            node = node.child(index)
        return node

    def xpub(self, *, testnet: bool = False) -> str:
        if self.depth > 255:
            raise CryptoError("BIP-32 depth exceeds 255")
        payload = ((TPUB_VERSION if testnet else XPUB_VERSION) + bytes([self.depth])
                   + self.parent_fingerprint + self.child_number.to_bytes(4, "big")
                   + self.chaincode + self.pubkey)
        return _b58check(payload)


def _as_keyagg(keyagg_or_pubkeys: KeyAggContext | Sequence[bytes]) -> KeyAggContext:
    if isinstance(keyagg_or_pubkeys, KeyAggContext):
        return keyagg_or_pubkeys
    return KeyAggContext.from_pubkeys(keyagg_or_pubkeys)


def bip328_derive(keyagg: KeyAggContext | Sequence[bytes], path: Sequence[int] = ()) -> KeyAggContext:
    """Key-aggregation context for the child at ``path`` of the aggregate key's synthetic xpub.

    Its ``aggregate_pubkey()`` is the derived child key; sessions built on it
    sign for that key (add ``.with_taproot_tweak()`` for a P2TR output).
    Participant keys are used in the order given (BIP-328 does not sort).
    """
    return Bip328Node.root(_as_keyagg(keyagg)).derive(path).keyagg


def bip328_xpub(keyagg: KeyAggContext | Sequence[bytes], path: Sequence[int] = (), *,
                testnet: bool = False) -> str:
    """Base58 extended public key of the node at ``path`` (root: the synthetic xpub)."""
    return Bip328Node.root(_as_keyagg(keyagg)).derive(path).xpub(testnet=testnet)

