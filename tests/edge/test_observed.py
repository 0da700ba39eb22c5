"""The signer picker's "observed" counts: signed / failed on invalid evidence / on a timeout."""
from __future__ import annotations

from types import SimpleNamespace

from musig2_plugin.plugin import _three, observed_slots

A, B, C = b"\x02" + b"\xaa" * 32, b"\x02" + b"\xbb" * 32, b"\x02" + b"\xcc" * 32


def test_only_our_own_evidence_counts_and_by_its_kind():
    signed = SimpleNamespace(record=SimpleNamespace(keys=(A, B, C)))
    assert observed_slots("signed", signed, A) == [(B, 0), (C, 0)]
    failed = SimpleNamespace(culprits=(B, C, A), evidence={B: "invalid", C: "timeout",
                                                           A: "invalid"})
    assert observed_slots("failed", failed, A) == [(B, 1), (C, 2)]      # never ourselves
    # Aborted on the coordinator's word: it named B, we hold no evidence: nobody counted.
    assert observed_slots("failed", SimpleNamespace(culprits=(), evidence={}), A) == []


def test_counts_stored_before_the_split_keep_their_failures_as_timeouts():
    assert _three([4, 1]) == [4, 0, 1]
    assert _three([]) == [0, 0, 0]
    assert _three([1, 2, 3]) == [1, 2, 3]
