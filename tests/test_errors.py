"""One error root for the plugin, and one place that turns errors into the user's sentence."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import musig2_plugin
from musig2_plugin.foundation.errors import Musig2Error
from tests.harness.electrum import require_electrum


def _our_exception_classes() -> list[type]:
    """Every exception class defined in a module of musig2_plugin (Electrum-facing ones too)."""
    require_electrum()
    found = []
    for info in pkgutil.walk_packages(musig2_plugin.__path__, "musig2_plugin."):
        if info.name.rsplit(".", 1)[-1] in ("qt", "qt_dialogs", "commands", "cmdline"):
            continue          # Qt / Electrum's command registry: covered by the edge tests
        module = importlib.import_module(info.name)
        for _name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_error_class_derives_from_the_one_root():
    classes = _our_exception_classes()
    assert len(classes) > 50            # the walk really found the layers' errors
    strays = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes
                    if not issubclass(c, Musig2Error))
    assert strays == []


def test_user_message_names_our_error_and_flags_a_defect():
    from musig2_plugin.app import user_message
    from musig2_plugin.records import InvalidField
    from musig2_plugin.wallet_bridge import SighashMismatch
    assert user_message(InvalidField("nickname longer than 32 UTF-8 bytes")) == \
        "InvalidField: nickname longer than 32 UTF-8 bytes"
    assert user_message(SighashMismatch(1, "claimed sighash differs")).startswith("SighashMismatch: ")
    assert user_message(Musig2Error()) == "Musig2Error"
    # not ours: a defect, said so, never passed off as a protocol rule
    assert user_message(KeyError("x")) == "Unexpected error (KeyError): 'x'"
    assert user_message(RuntimeError()) == "Unexpected error (RuntimeError)"


@pytest.mark.parametrize("nickname, ok", [
    ("", True), ("alice", True), ("n" * 32, True), ("\u00e9" * 16, True),      # 32 bytes
    ("n" * 33, False), ("\u00e9" * 17, False), ("\U0001F600" * 9, False),    # 33, 34, 36 bytes
])
def test_nickname_limit_is_the_records_constant(nickname, ok):
    from musig2_plugin.app import BadArgument, check_nickname
    from musig2_plugin.foundation.constants import MAX_NICKNAME_BYTES
    from musig2_plugin.foundation.chain import REGTEST
    from musig2_plugin.records import Advertisement, InvalidField, TxType
    size = len(nickname.encode())
    if ok:
        assert check_nickname(nickname) == nickname
    else:
        with pytest.raises(BadArgument, match=f"is {size} bytes long in UTF-8; at most {MAX_NICKNAME_BYTES}"):
            check_nickname(nickname)
    # the same boundary as the record itself (one constant, no second limit)
    seckey = bytes(31) + b"\x01"
    try:
        Advertisement.create(seckey, tx_types=(TxType.SPEND,), min_amount_sat=0,
                             max_amount_sat=1000, host="127.0.0.1", port=1, nickname=nickname,
                             chain=REGTEST)
        record_ok = True
    except InvalidField:
        record_ok = False
    assert record_ok is ok


def test_check_nickname_refuses_non_text():
    from musig2_plugin.app import BadArgument, check_nickname
    with pytest.raises(BadArgument, match="must be text"):
        check_nickname(b"alice")
