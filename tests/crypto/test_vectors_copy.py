"""The vendored BIP vectors must be exactly the project's shared reference copy.

The copy exists so a clean clone is self-contained; this check keeps it from
drifting (an edited vector would make a wrong implementation "pass").
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1] / "vectors"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.json"))}


def test_vendored_vectors_present():
    digests = _digests(HERE)
    assert len([k for k in digests if k.startswith("bip327/")]) == 8
    assert "bip328/vectors.json" in digests


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/vectors beside this clone to compare with")
def test_vendored_vectors_match_shared_copy():
    assert _digests(HERE) == _digests(SHARED)
