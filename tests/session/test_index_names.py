"""One name per index: a session's message index and a key's signer index are named apart.

`index` meant the message's position in a request, a key's position among the KeySorted
signers and an input's position; the public names now say which (docs/architecture.md,
"Names"). These tests pin the names and what each one means, on real keys and real KeySort.
"""
from __future__ import annotations

import dataclasses
import os

import pytest

from musig2_plugin.crypto import key_sort, plain_pubkey
from musig2_plugin.session import SessionSpec, compute_session_id


def _keys(n: int) -> list[bytes]:
    return [plain_pubkey(os.urandom(32)) for _ in range(n)]


def test_the_message_index_is_named_and_hashed_into_the_session_id():
    keys, rid, msg = _keys(3), os.urandom(32), os.urandom(32)
    first = SessionSpec.build(rid, keys, msg, message_index=0)
    second = SessionSpec.build(rid, keys, msg, message_index=1)
    assert second.message_index == 1
    assert first.session_id != second.session_id
    assert second.session_id == compute_session_id(rid, keys, message_index=1)
    assert not first.signs_the_same(second)
    assert "index" not in {f.name for f in dataclasses.fields(SessionSpec)}
    with pytest.raises(TypeError):
        SessionSpec.build(rid, keys, msg, index=1)          # the ambiguous name is gone


def test_the_signer_index_is_the_position_among_keysorted_keys():
    keys = _keys(4)
    spec = SessionSpec.build(os.urandom(32), list(reversed(keys)), os.urandom(32))
    ordered = key_sort(keys)
    assert [spec.signer_index_of(k) for k in ordered] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        spec.signer_index_of(_keys(1)[0])                   # not a participant
    assert not hasattr(spec, "index_of")
