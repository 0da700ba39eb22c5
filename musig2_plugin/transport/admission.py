"""Admission of pushed signing requests: verified first, then budgeted by who signed them.

A pushed request costs us milliseconds (ECDH, one session set-up per message)
and anyone may push one. The old rule spent one node-wide budget *before* the
record was even checked, so a stranger's junk used up the budget of the people
we were signing with (issue 14, item 2). Now the transport hands the bytes on,
the coordinator decodes and verifies the record's signature (cheap, size-bounded),
and only then asks this class whether the signer may be served:

* a *known co-signer* (someone we created or joined a request with, or a peer the
  operator added) draws on a budget of its own key only: no stranger can empty it;
* a *stranger* draws on its key's small budget, on the budget of its source
  address and on one budget shared by all strangers, so that fresh keys (free to
  make) and many connections do not multiply what a flood costs us.

Traffic that does not verify never reaches this class: it is refused by the
decoder and charged to the connection that sent it (closed after
``block_after_invalid``), which is the separate small budget unauthenticated
traffic gets.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from ..foundation.config import Musig2Config
from ..foundation.errors import Musig2Error
from .guards import TokenBucket


class PushRefused(Musig2Error, ValueError):
    """A verified push over its signer's budget: refused now, still findable in the DHT."""


class _Buckets:
    """Token buckets by name, the least recently used forgotten beyond ``max_entries``."""

    def __init__(self, rate: float, burst: int, max_entries: int) -> None:
        self.rate, self.burst, self.max_entries = rate, burst, max_entries
        self._buckets: OrderedDict[object, TokenBucket] = OrderedDict()

    def get(self, name: object) -> TokenBucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(self.rate, self.burst)
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(name)
        return bucket


class PushAdmission:
    def __init__(self, config: Musig2Config, is_known: Callable[[bytes], bool]) -> None:
        self._is_known = is_known
        self._known = _Buckets(config.known_push_rate_per_sec, config.known_push_burst,
                               config.max_push_budgets)
        self._stranger = _Buckets(config.stranger_push_rate_per_sec, config.stranger_push_burst,
                                  config.max_push_budgets)
        self._source = _Buckets(config.stranger_push_source_rate_per_sec,
                                config.stranger_push_source_burst, config.max_push_budgets)
        self._all_strangers = TokenBucket(config.stranger_push_total_rate_per_sec,
                                          config.stranger_push_total_burst)
        #: Admissions and refusals by class (observability and tests).
        self.counts: dict[str, int] = {}

    def admit(self, signer: bytes, source: str) -> None:
        """Spend one push from ``signer`` (whose signature held) arriving from ``source``."""
        if self._is_known(signer):
            self._take("known", self._known.get(signer), "co-signer push rate exceeded")
            return
        # Check every stranger bucket before taking from any: a refused push costs nothing.
        buckets = (self._stranger.get(signer), self._source.get(source), self._all_strangers)
        if not all(b.peek() for b in buckets):
            self._bump("stranger-refused")
            raise PushRefused("push rate for unknown signers exceeded; the request stays "
                              "findable in the DHT")
        for b in buckets:
            b.take()
        self._bump("stranger")

    def _take(self, kind: str, bucket: TokenBucket, why: str) -> None:
        if not bucket.take():
            self._bump(kind + "-refused")
            raise PushRefused(why)
        self._bump(kind)

    def _bump(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
