"""The wallet's MuSig2 outputs: kept in plugin storage, followed live on the wallet's server.

Storage: one record per output in the plugin's per-wallet storage (Electrum's
wallet file), keyed by descriptor text (network independent, and what a user
backs up). Only public data is stored.

Following: an Electrum ``AddressSynchronizer`` of our own, on an in-memory
wallet database, started on the wallet's own network connection, with every
MuSig2 address added. That is Electrum's machinery for its own addresses:
script-hash subscriptions to the server, history, transaction download and SPV
verification of confirmations, so balances and coins update live and are
exactly as trustworthy as the wallet's own. (Electrum's watchtower plugin uses
the same construction.) The wallet's own database stays untouched: these
coins are not the wallet's alone, and Electrum must not try to spend them.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, MutableMapping, Optional

from electrum.address_synchronizer import AddressSynchronizer
from electrum.wallet_db import WalletDB

from .errors import BridgeError
from .musig_output import MusigOutput
from .spend import MusigCoin

_STORAGE_KEY = "outputs"


class UnknownOutput(BridgeError):
    """The named MuSig2 output is not one of this wallet's."""


@dataclass(frozen=True)
class StoredOutput:
    output: MusigOutput
    label: str
    created_at: int

    def to_json(self, *, net: Any = None) -> dict[str, Any]:
        o = self.output
        return {"descriptor": o.descriptor, "address": o.address(net=net), "label": self.label,
                "participants": [k.hex() for k in o.participants],
                "internal_key": o.internal_key.hex(), "output_key": o.output_key.hex(),
                "created_at": self.created_at,
                "recovery": ({"policy": o.recovery.spec, "miniscript": o.recovery.miniscript(),
                              "blocks": o.recovery.blocks, "text": o.recovery.describe()}
                             if o.recovery else None)}


class VaultStore:
    """CRUD over the wallet's MuSig2 output records (plugin storage dict)."""

    def __init__(self, storage: MutableMapping[str, Any]):
        if _STORAGE_KEY not in storage:
            storage[_STORAGE_KEY] = {}
        self._records = storage[_STORAGE_KEY]

    def add(self, out: MusigOutput, label: str = "") -> StoredOutput:
        if not isinstance(label, str) or len(label) > 200:
            raise BridgeError("label must be a string of at most 200 characters")
        key = out.descriptor
        if key not in self._records:
            self._records[key] = {**out.to_dict(), "label": label, "created_at": int(time.time())}
        elif label:
            rec = dict(self._records[key])
            rec["label"] = label
            self._records[key] = rec
        return self._load(key)

    def _load(self, key: str) -> StoredOutput:
        rec = self._records[key]
        return StoredOutput(MusigOutput.from_dict(rec), str(rec.get("label", "")),
                            int(rec.get("created_at", 0)))

    def all(self) -> list[StoredOutput]:
        return [self._load(k) for k in sorted(self._records)]

    def find(self, ref: str) -> StoredOutput:
        """By address, descriptor (with or without checksum) or output key hex."""
        ref = (ref or "").strip()
        for stored in self.all():
            o = stored.output
            if ref in (o.address(), o.descriptor, o.descriptor.split("#")[0], o.output_key.hex(),
                       o.xonly_output_key.hex()):
                return stored
        raise UnknownOutput(f"no MuSig2 output of this wallet matches {ref!r}")

    def by_script(self) -> dict[bytes, MusigOutput]:
        return {s.output.scriptpubkey: s.output for s in self.all()}

    def remove(self, ref: str) -> None:
        stored = self.find(ref)
        del self._records[stored.output.descriptor]


class VaultWatcher:
    """Live balances and coins of MuSig2 addresses through the wallet's network connection."""

    def __init__(self, network):
        self.network = network
        db = WalletDB("", storage=None, upgrade=True)
        self.adb = AddressSynchronizer(db, network.config, verify_txins=None,
                                       name="musig2-outputs")
        self.adb.start_network(network)
        self._outputs: dict[str, MusigOutput] = {}

    def watch(self, out: MusigOutput) -> None:
        addr = out.address()
        if addr not in self._outputs:
            self._outputs[addr] = out
            self.adb.add_address(addr)

    def watched(self) -> list[str]:
        return sorted(self._outputs)

    def is_up_to_date(self) -> bool:
        return bool(self.adb.is_up_to_date())

    async def wait_synced(self, timeout: float = 30.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.is_up_to_date():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def balance(self, out: MusigOutput) -> dict[str, int]:
        c, u, x = self.adb.get_balance([out.address()])
        return {"confirmed": int(c), "unconfirmed": int(u), "unmatured": int(x)}

    def coins(self, out: MusigOutput, *, confirmed_only: bool = False) -> list[MusigCoin]:
        utxos = self.adb.get_utxos([out.address()], confirmed_funding_only=confirmed_only)
        return [MusigCoin(u.prevout.txid.hex(), u.prevout.out_idx, int(u.value_sats()), out)
                for u in sorted(utxos, key=lambda u: (u.prevout.txid, u.prevout.out_idx))]

    def coin_heights(self, out: MusigOutput) -> dict[str, int]:
        return {u.prevout.to_str(): int(u.block_height or 0)
                for u in self.adb.get_utxos([out.address()])}

    async def stop(self) -> None:
        await self.adb.stop()
