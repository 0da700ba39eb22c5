"""The application API the edge calls: create an output, find signers, advertise, withdraw,
combine PSBTs.

The commands (``commands.py``) and the Qt dialogs (``qt_dialogs.py``) call these functions and
the co-signing service (:class:`~.cosign.WalletCosigner`); none of them reaches into the
coordinator node or into Electrum's private PSBT fields. Arguments come typed (keys as bytes,
amounts as ints): parsing what a user typed stays in the front end that received it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from ..coordinator import NoPublicEndpoint, TxType
from ..wallet_bridge import (StoredOutput, VaultStore, create_recovery_output, import_output,
                             combine_psbts as bridge_combine_psbts)
from .errors import BadArgument, check_nickname
from .reach import NodeSettingsError

if TYPE_CHECKING:
    from electrum.transaction import PartialTransaction

    from .cosign import WalletCosigner


def create_output(vaults: VaultStore, me: bytes, *, keys: Optional[Iterable[bytes]] = None,
                  descriptor: Optional[str] = None, label: str = "",
                  recovery: Optional[str] = None) -> StoredOutput:
    """A MuSig2 output of ``me`` and the others, remembered in ``vaults``.

    The creator gives ``keys`` (``me`` is added if absent) and optionally a ``recovery`` policy
    (docs/recovery.md); a co-signer imports the creator's ``descriptor``, which must include
    ``me`` and carry exactly the announced ``recovery`` policy (or none).
    """
    if (keys is None) == (descriptor is None):
        raise BadArgument("give either keys or descriptor")
    if descriptor is not None:
        out = import_output(str(descriptor), me, recovery)
    else:
        out = create_recovery_output(me, [bytes(k) for k in keys], recovery)
    return vaults.add(out, label or "")


def tx_type(value: "TxType | str") -> TxType:
    """A transaction type from its name (BadArgument naming the known ones otherwise)."""
    try:
        return TxType(value)
    except ValueError:
        known = ", ".join(t.value for t in TxType)
        raise BadArgument(f"unknown transaction type {value!r} (known: {known})") from None


async def find_signers(cosigner: "WalletCosigner", kind: "TxType | str" = TxType.SPEND, *,
                       amount: Optional[int] = None, min_reputation: Optional[int] = None,
                       history: Optional[Callable[[bytes], Optional[tuple[int, int]]]] = None):
    """Advertised co-signers from the DHT, best first, each checked against its signature.

    ``history``: owner key -> (sessions signed, sessions failed) as this wallet saw them; the
    discovery ranks by it ahead of what signers claim about themselves (docs/records-and-dht.md).
    """
    if amount is not None and (not isinstance(amount, int) or amount < 0):
        raise BadArgument("the amount must be a whole number of satoshis, at least 0")
    discovery = getattr(cosigner.node, "discovery", None)
    if history is not None and discovery is not None:
        discovery.history = history
    return await cosigner.node.find_available_signers(tx_type(kind), amount=amount,
                                                      min_reputation=min_reputation)


async def advertise(cosigner: "WalletCosigner", *, tx_types: Sequence["TxType | str"],
                    min_amount_sat: int = 0, max_amount_sat: Optional[int] = None,
                    nickname: str = "", fee_per_signature_sat: int = 0):
    """Publish 'advertise me' (kept alive until withdrawn); BadArgument on a bad field.

    Issued while node start still finds out how peers reach us (dial-back, relay), it waits
    for that first (ReachNotSettled if it takes too long), so the advertisement names the
    endpoint peers can really use."""
    kwargs = dict(tx_types=tuple(tx_type(t) for t in tx_types), min_amount_sat=min_amount_sat,
                  nickname=check_nickname(nickname), fee_per_signature_sat=fee_per_signature_sat)
    if max_amount_sat is not None:
        kwargs["max_amount_sat"] = max_amount_sat
    await cosigner.reach_settled()
    try:
        return await cosigner.node.advertise_signer(**kwargs)
    except NoPublicEndpoint as exc:       # a mainnet node on loopback: say what to set
        why = f" (node start's reachability step failed: {cosigner.reach_error})" \
            if cosigner.reach_error else ""
        raise NodeSettingsError(f"{exc}{why}") from None


async def withdraw(cosigner: "WalletCosigner") -> bool:
    """Withdraw our advertisement (a signed tombstone replaces it); False if there was none."""
    return await cosigner.node.withdraw_advertisement() is not None


def combine_psbts(psbts: Sequence["str | bytes"]) -> "PartialTransaction":
    """The participants' PSBTs of one transaction merged (MalformedPsbt on any disagreement)."""
    return bridge_combine_psbts(psbts)
