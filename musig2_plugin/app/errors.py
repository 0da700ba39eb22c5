"""Every typed error -> the one sentence a user reads, in one place.

The commands (``UserFacingException``) and the Qt dialogs (error labels, message boxes) both
call :func:`user_message`, so a refusal reads the same whichever front end shows it. The text
starts with the error's class name (``SighashMismatch: input 1: ...``): scripts driving the
commands tell refusals apart by it, and users still read a sentence, never a traceback.
"""
from __future__ import annotations

from ..foundation.constants import MAX_NICKNAME_BYTES
from ..foundation.errors import BadArgument, Musig2Error

__all__ = ["BadArgument", "check_nickname", "user_message"]


def user_message(exc: BaseException) -> str:
    """The sentence for ``exc``: ``<Class>: <why>`` for our typed errors.

    Anything else is a defect, not a refusal: it is named as unexpected so that it is reported
    rather than mistaken for a rule of the protocol.
    """
    detail = str(exc).strip()
    if isinstance(exc, Musig2Error):
        name = type(exc).__name__
        return f"{name}: {detail}" if detail else name
    return f"Unexpected error ({type(exc).__name__}){': ' + detail if detail else ''}"


def check_nickname(nickname: str) -> str:
    """The advertised nickname, or BadArgument saying the limit (the records' own constant).

    The record refuses more than MAX_NICKNAME_BYTES UTF-8 bytes; checking here, with the same
    constant, gives the user the limit in words instead of the record layer's InvalidField.
    """
    if not isinstance(nickname, str):
        raise BadArgument("the nickname must be text")
    size = len(nickname.encode("utf-8"))
    if size > MAX_NICKNAME_BYTES:
        raise BadArgument(f"the nickname is {size} bytes long in UTF-8; at most "
                          f"{MAX_NICKNAME_BYTES} are allowed (shorten it)")
    return nickname
