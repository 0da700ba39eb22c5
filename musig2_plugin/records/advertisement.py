"""Signer advertisement and its tombstone (withdrawal).

An advertisement tells searchers that the owner key co-signs transactions of
some types within an amount range, and where to reach it. It is stored under
one topic per accepted type, in the owner's shard (records/topics.py). A withdrawal occupies the same slot with a higher
seq and is stored under every signer topic of the owner's shard, so it buries the advertisement
wherever a copy may live, until the withdrawal itself expires.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..foundation import constants as C
from ..foundation.chain import Chain
from .base import Record
from .codec import Reader, Writer
from .errors import InvalidField
from .fields import (Endpoint, TxType, check_int, make_endpoint, read_endpoint, write_endpoint, check_text, check_trust_requirements,
                     decode_text, mask_to_tx_types, tx_type, tx_types_to_mask)
from .topics import signer_topic, signer_topics

KIND_ADVERTISEMENT = 1
KIND_WITHDRAWAL = 2
SIGNER_SLOT_PREFIX = b"S"


@dataclass(frozen=True, slots=True, kw_only=True)
class Advertisement(Record):
    KIND = KIND_ADVERTISEMENT
    TAG = C.RECORD_TAG_ADVERTISEMENT

    tx_types: tuple[TxType, ...]
    min_amount_sat: int
    max_amount_sat: int
    endpoint: Endpoint
    trust_requirements: tuple[str, ...] = ()
    nickname: str = ""
    description: str = ""
    fee_per_signature_sat: int = 0
    response_time_s: int = 60
    reputation: int = 0

    @classmethod
    def create(cls, seckey: bytes, *, chain: "Chain | bytes",
               tx_types: "Iterable[TxType | str] | TxType | str",
               min_amount_sat: int, max_amount_sat: int, host: str | None = None,
               port: int | None = None, endpoint: Endpoint | None = None,
               trust_requirements: Iterable[str] = (), nickname: str = "", description: str = "",
               fee_per_signature_sat: int = 0, response_time_s: int = 60, reputation: int = 0,
               ttl: float = C.ADVERTISEMENT_DEFAULT_TTL_S, seq: int | None = None,
               now: float | None = None) -> "Advertisement":
        """Build and sign an advertisement; ``seq`` defaults to the creation time in ms,
        so a restarted owner that lost its counter still outbids its old records.
        ``endpoint`` (any reach kind) replaces ``host``/``port`` (a direct endpoint)."""
        if endpoint is None:
            endpoint = make_endpoint(host, port)
        elif host is not None or port is not None:
            raise InvalidField("give either host/port or an endpoint")
        types = mask_to_tx_types(tx_types_to_mask(tx_types))
        return cls._signed(seckey, chain=chain, ttl=ttl, seq=seq, now=now, tx_types=types,
                           min_amount_sat=min_amount_sat, max_amount_sat=max_amount_sat,
                           endpoint=endpoint,
                           trust_requirements=check_trust_requirements(
                               trust_requirements, C.MAX_TRUST_REQUIREMENTS,
                               C.MAX_TRUST_REQUIREMENT_BYTES),
                           nickname=nickname, description=description,
                           fee_per_signature_sat=fee_per_signature_sat,
                           response_time_s=response_time_s, reputation=reputation)

    @property
    def slot(self) -> bytes:
        return SIGNER_SLOT_PREFIX + self.owner_xonly

    def topics(self) -> tuple[bytes, ...]:
        return tuple(signer_topic(t, self.owner, self.chain_id) for t in self.tx_types)

    def accepted_topics(self) -> tuple[bytes, ...]:
        """Any signer topic: an update that drops a type is also published under the
        dropped type's topic, where it replaces the older version that still lists
        the type (searchers filter by ``accepts``). Only the owner's own shard."""
        return signer_topics(self.owner, self.chain_id)

    def accepts(self, kind: "TxType | str") -> bool:
        return tx_type(kind) in self.tx_types

    def covers_amount(self, amount_sat: int) -> bool:
        return self.min_amount_sat <= amount_sat <= self.max_amount_sat

    def _validate_body(self) -> None:
        if not isinstance(self.tx_types, tuple):
            raise InvalidField("tx_types must be a tuple")
        if mask_to_tx_types(tx_types_to_mask(self.tx_types)) != self.tx_types:
            raise InvalidField("tx_types must be unique and in canonical order")
        check_int(self.min_amount_sat, 0, C.MAX_MONEY_SAT, "min amount")
        check_int(self.max_amount_sat, 0, C.MAX_MONEY_SAT, "max amount")
        if self.min_amount_sat > self.max_amount_sat:
            raise InvalidField("min amount exceeds max amount")
        if not isinstance(self.endpoint, Endpoint):
            raise InvalidField("endpoint must be an Endpoint")
        if check_trust_requirements(self.trust_requirements, C.MAX_TRUST_REQUIREMENTS,
                                    C.MAX_TRUST_REQUIREMENT_BYTES) != self.trust_requirements:
            raise InvalidField("trust requirements must be sorted and unique")
        check_text(self.nickname, C.MAX_NICKNAME_BYTES, "nickname")
        check_text(self.description, C.MAX_DESCRIPTION_BYTES, "description", multiline=True)
        check_int(self.fee_per_signature_sat, 0, C.MAX_MONEY_SAT, "fee per signature")
        check_int(self.response_time_s, 0, C.MAX_RESPONSE_TIME_S, "response time")
        check_int(self.reputation, 0, C.MAX_REPUTATION, "reputation")

    def _encode_body(self, w: Writer) -> None:
        w.u8(tx_types_to_mask(self.tx_types))
        w.u64(self.min_amount_sat)
        w.u64(self.max_amount_sat)
        w.u64(self.fee_per_signature_sat)
        w.u32(self.response_time_s)
        w.u8(self.reputation)
        w.u8(len(self.trust_requirements))
        for tok in self.trust_requirements:
            w.var8(tok.encode("ascii"))
        w.var8(self.nickname.encode("utf-8"))
        w.var16(self.description.encode("utf-8"))
        write_endpoint(w, self.endpoint)

    @classmethod
    def _decode_body(cls, r: Reader) -> dict:
        types = mask_to_tx_types(r.u8("tx types"))
        min_amount, max_amount = r.u64("min amount"), r.u64("max amount")
        fee, response_time, reputation = r.u64("fee"), r.u32("response time"), r.u8("reputation")
        count = r.u8("trust requirement count")
        if count > C.MAX_TRUST_REQUIREMENTS:
            raise InvalidField("too many trust requirements")
        tokens = []
        for _ in range(count):
            raw = r.var8("trust requirement", C.MAX_TRUST_REQUIREMENT_BYTES)
            if not raw.isascii():
                raise InvalidField("trust requirement is not ASCII")
            tokens.append(raw.decode("ascii"))
        nickname = decode_text(r.var8("nickname", C.MAX_NICKNAME_BYTES), C.MAX_NICKNAME_BYTES,
                               "nickname")
        description = decode_text(r.var16("description", C.MAX_DESCRIPTION_BYTES),
                                  C.MAX_DESCRIPTION_BYTES, "description", multiline=True)
        endpoint = read_endpoint(r)
        return dict(tx_types=types, min_amount_sat=min_amount, max_amount_sat=max_amount,
                    fee_per_signature_sat=fee, response_time_s=response_time,
                    reputation=reputation, trust_requirements=tuple(tokens), nickname=nickname,
                    description=description, endpoint=endpoint)


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdrawal(Record):
    """Signed tombstone: "my advertisements up to this seq are void"."""

    KIND = KIND_WITHDRAWAL
    TAG = C.RECORD_TAG_WITHDRAWAL

    @classmethod
    def create(cls, seckey: bytes, *, chain: "Chain | bytes", seq: int | None = None,
               ttl: float = C.WITHDRAWAL_DEFAULT_TTL_S, now: float | None = None) -> "Withdrawal":
        """``seq`` must exceed the withdrawn advertisement's (the default, now in ms, does
        for advertisements created earlier with default seqs). The TTL must cover the
        remaining life of that advertisement, or the old copy could resurface."""
        return cls._signed(seckey, chain=chain, ttl=ttl, seq=seq, now=now)

    @classmethod
    def for_advertisement(cls, seckey: bytes, ad: Advertisement, *,
                          now: float | None = None) -> "Withdrawal":
        """A tombstone that outbids ``ad`` and outlives it."""
        from .base import now_ms

        created = now_ms(now)
        ttl = max(C.MIN_TTL_S, (ad.expires_at_ms - created) / 1000 + 1)
        return cls.create(seckey, chain=ad.chain_id, seq=max(ad.seq + 1, created),
                          ttl=min(ttl, C.MAX_TTL_S), now=now)

    @property
    def slot(self) -> bytes:
        return SIGNER_SLOT_PREFIX + self.owner_xonly

    def topics(self) -> tuple[bytes, ...]:
        return signer_topics(self.owner, self.chain_id)

    def _validate_body(self) -> None:
        return None

    def _encode_body(self, w: Writer) -> None:
        return None

    @classmethod
    def _decode_body(cls, r: Reader) -> dict:
        return {}
