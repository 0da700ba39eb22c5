"""A small asyncio client of Tor's control protocol: authenticate, ADD_ONION, DEL_ONION, GETINFO.

Why our own and not ``stem``: the node needs four commands; the protocol is line-based text
(control-spec.txt), and a client of ~200 lines that bounds every reply (line length, line count,
time) is easier to audit than a large dependency with its own threads.  Nothing here trusts the
control port more than necessary: with cookie authentication we use SAFECOOKIE when Tor offers it,
which also proves that the port we talk to knows the cookie (a process squatting the port cannot
learn it), and we refuse replies that break the grammar or the bounds with :class:`TorControlError`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..foundation import constants as C
from ..foundation.errors import Musig2Error

SAFECOOKIE_SERVER_KEY = b"Tor safe cookie authentication server-to-controller hash"
SAFECOOKIE_CLIENT_KEY = b"Tor safe cookie authentication controller-to-server hash"
COOKIE_LEN = 32
_ONION_RE = re.compile(rf"^[a-z2-7]{{{C.TOR_ONION_V3_LEN}}}$")


class TorControlError(Musig2Error):
    """The control port is unreachable, refused us, or answered outside the protocol."""


class TorAuthError(TorControlError):
    """Authentication failed (wrong password or cookie, or no method we can use)."""


@dataclass(frozen=True)
class ControlSettings:
    """Where the control port is and how to authenticate: a password, or the cookie file (its
    path from the settings, else the one Tor names in PROTOCOLINFO)."""

    host: str
    port: int
    password: str | None = None
    cookie_file: str | None = None


@dataclass(frozen=True)
class Reply:
    status: str
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.status == "250"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kv(line: str) -> dict[str, str]:
    """``KEY=value KEY2="quoted value"`` -> dict (values unquoted)."""
    out: dict[str, str] = {}
    for match in re.finditer(r'([A-Za-z0-9_]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[match.group(1)] = value
    return out


class _UploadTracker:
    """Predicate over HS_DESC events of one service: true once every descriptor upload Tor
    started so far has ended and at least one reached its HSDir (a client asking any of those
    HSDirs then finds the descriptor)."""

    def __init__(self, service_id: str) -> None:
        self.service_id = service_id
        self.pending: set[str] = set()
        self.uploaded = 0

    def __call__(self, event: Reply) -> bool:
        parts = event.lines[0].split()
        if len(parts) < 5 or parts[0] != "HS_DESC" or parts[2] != self.service_id:
            return False
        action, hsdir = parts[1], parts[4]
        if action == "UPLOAD":
            self.pending.add(hsdir)
        elif action in ("UPLOADED", "FAILED"):
            self.pending.discard(hsdir)
            self.uploaded += action == "UPLOADED"
        return self.uploaded > 0 and not self.pending


class TorControl:
    """One authenticated control connection.  Ephemeral onion services created on it live as
    long as it is open (no ``Detach`` flag): if the node dies, Tor removes them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._events: list[Reply] = []

    @classmethod
    async def connect(cls, settings: ControlSettings,
                      timeout: float = C.TOR_CONTROL_TIMEOUT_S) -> "TorControl":
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(settings.host, settings.port, limit=C.TOR_CONTROL_MAX_LINE),
                timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise TorControlError(f"cannot reach the Tor control port {settings.host}:{settings.port}: "
                                  f"{exc!r}") from None
        control = cls(reader, writer, timeout)
        try:
            await control._authenticate(settings)
        except BaseException:
            await control.close()
            raise
        return control

    # ------------------------------------------------------------------ protocol
    async def _read_reply(self) -> Reply:
        """The reply to the command just sent; asynchronous events read on the way (status 650)
        are kept, bounded, for wait_event()."""
        while True:
            message = await self._read_message()
            if message is None:   # unreachable: without first_wait a timeout raises instead
                raise TorControlError("control port did not answer in time")
            if message.status != "650":
                return message
            self._events.append(message)
            del self._events[:-C.TOR_CONTROL_MAX_LINES]

    async def wait_event(self, predicate, timeout: float) -> Reply:
        """The first asynchronous event (subscribed with SETEVENTS) for which ``predicate``
        is true; TorControlError after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._lock:
            while True:
                for i, event in enumerate(self._events):
                    if predicate(event):
                        del self._events[:i + 1]
                        return event
                self._events.clear()
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TorControlError(f"no matching event from Tor within {timeout:.0f} s")
                # Only the wait for a message's first line may be long (events can be far
                # apart); once a message starts, its lines come at once. Never cancelled
                # mid-message, so the stream stays in step.
                message = await self._read_message(first_wait=left)
                if message is None:
                    raise TorControlError(f"no matching event from Tor within {timeout:.0f} s")
                if message.status == "650":
                    self._events.append(message)

    async def _readline(self, wait: float) -> bytes | None:
        """One raw line; None when nothing came within ``wait`` seconds."""
        try:
            return await asyncio.wait_for(self._reader.readline(), wait)
        except asyncio.TimeoutError:
            return None
        except (ValueError, asyncio.LimitOverrunError):
            raise TorControlError("control port reply line too long") from None
        except OSError as exc:
            raise TorControlError(f"control connection failed: {exc!r}") from None

    async def _read_message(self, first_wait: float | None = None) -> Reply | None:
        """One complete reply or event. With ``first_wait``: None when no message starts
        within it; otherwise (and for every later line) TorControlError after the timeout."""
        lines: list[str] = []
        status = ""
        while True:
            if len(lines) >= C.TOR_CONTROL_MAX_LINES:
                raise TorControlError("control port reply has too many lines")
            waiting_first = not lines and first_wait is not None
            raw = await self._readline(first_wait if waiting_first else self._timeout)
            if raw is None:
                if waiting_first:
                    return None
                raise TorControlError("control port did not answer in time")
            if not raw:
                raise TorControlError("control port closed the connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 4 or not text[:3].isdigit() or text[3] not in " -+":
                raise TorControlError(f"malformed control port reply line {text[:80]!r}")
            if status and text[:3] != status:
                raise TorControlError("control port reply mixes status codes")
            status = text[:3]
            lines.append(text[4:])
            if text[3] == "+":   # a data block follows, ended by a line with a single "."
                while True:
                    data = await self._readline(self._timeout)
                    if data is None:
                        raise TorControlError("control port did not answer in time")
                    if not data:
                        raise TorControlError("control port closed the connection in a data block")
                    if data.rstrip(b"\r\n") == b".":
                        break
                    if len(lines) >= C.TOR_CONTROL_MAX_LINES:
                        raise TorControlError("control port reply has too many lines")
                    lines.append(data.decode("utf-8", "replace").rstrip("\r\n"))
            elif text[3] == " ":
                return Reply(status, tuple(lines))

    async def command(self, line: str) -> Reply:
        """Send one command line and return Tor's reply (any status)."""
        if "\r" in line or "\n" in line:
            raise TorControlError("a control command is one line")
        async with self._lock:
            try:
                self._writer.write(line.encode() + b"\r\n")
                await asyncio.wait_for(self._writer.drain(), self._timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                raise TorControlError(f"control connection failed: {exc!r}") from None
            return await self._read_reply()

    async def _authenticate(self, settings: ControlSettings) -> None:
        info = await self.command("PROTOCOLINFO 1")
        if not info.ok:
            raise TorControlError(f"PROTOCOLINFO refused: {info.status} {' '.join(info.lines)}")
        methods: set[str] = set()
        cookie_path = settings.cookie_file
        for line in info.lines:
            if line.startswith("AUTH "):
                fields = _kv(line)
                methods = set(fields.get("METHODS", "").split(","))
                cookie_path = cookie_path or fields.get("COOKIEFILE")
        if settings.password is not None:
            if "HASHEDPASSWORD" not in methods:
                raise TorAuthError("this Tor control port does not accept a password "
                                   f"(it offers {','.join(sorted(methods)) or 'nothing'})")
            await self._auth_line(f"AUTHENTICATE {_quote(settings.password)}")
        elif "SAFECOOKIE" in methods or "COOKIE" in methods:
            cookie = self._read_cookie(cookie_path)
            if "SAFECOOKIE" in methods:
                await self._safecookie(cookie)
            else:
                await self._auth_line(f"AUTHENTICATE {cookie.hex()}")
        elif "NULL" in methods:
            await self._auth_line("AUTHENTICATE")
        else:
            raise TorAuthError("this Tor control port needs a password; set one in the settings")

    @staticmethod
    def _read_cookie(path: str | None) -> bytes:
        if not path:
            raise TorAuthError("Tor named no cookie file and none is set")
        try:
            p = Path(path)
            if p.stat().st_size != COOKIE_LEN:
                raise TorAuthError(f"the Tor cookie file {path} is not {COOKIE_LEN} bytes")
            return p.read_bytes()
        except OSError as exc:
            raise TorAuthError(f"cannot read the Tor cookie file {path}: {exc.strerror}") from None

    async def _safecookie(self, cookie: bytes) -> None:
        client_nonce = os.urandom(32)
        reply = await self.command(f"AUTHCHALLENGE SAFECOOKIE {client_nonce.hex()}")
        if not reply.ok or not reply.lines[0].startswith("AUTHCHALLENGE "):
            raise TorAuthError(f"AUTHCHALLENGE refused: {reply.status} {' '.join(reply.lines)}")
        fields = _kv(reply.lines[0])
        try:
            server_hash = bytes.fromhex(fields["SERVERHASH"])
            server_nonce = bytes.fromhex(fields["SERVERNONCE"])
        except (KeyError, ValueError):
            raise TorAuthError("malformed AUTHCHALLENGE reply") from None
        msg = cookie + client_nonce + server_nonce
        expected = hmac.new(SAFECOOKIE_SERVER_KEY, msg, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, server_hash):
            raise TorAuthError("the control port does not know the cookie (not our Tor?)")
        client_hash = hmac.new(SAFECOOKIE_CLIENT_KEY, msg, hashlib.sha256).hexdigest()
        await self._auth_line(f"AUTHENTICATE {client_hash}")

    async def _auth_line(self, line: str) -> None:
        reply = await self.command(line)
        if not reply.ok:
            raise TorAuthError(f"Tor refused the authentication: {reply.status} {' '.join(reply.lines)}")

    # ------------------------------------------------------------------ commands
    async def getinfo(self, key: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9/_.-]+", key):
            raise TorControlError(f"bad GETINFO key {key!r}")
        reply = await self.command(f"GETINFO {key}")
        if not reply.ok:
            raise TorControlError(f"GETINFO {key} refused: {reply.status} {' '.join(reply.lines)}")
        first = reply.lines[0]
        if not first.startswith(key + "="):
            raise TorControlError(f"GETINFO {key}: unexpected reply")
        rest = first[len(key) + 1:]
        return "\n".join([rest, *reply.lines[1:-1]]) if rest == "" else rest

    async def add_onion(self, virtual_port: int, target: tuple[str, int], *,
                        publish_timeout: float | None = None) -> str:
        """A new ephemeral v3 onion service forwarding ``virtual_port`` to ``target``; returns
        its address (``xxx.onion``).  The private key is discarded by Tor (``DiscardPK``).

        With ``publish_timeout``, return only once Tor reports the descriptor UPLOADED to an
        HSDir (HS_DESC event), so that an advertisement naming the address is reachable at once;
        TorControlError when that takes longer."""
        host, port = target
        if not (0 < int(virtual_port) < 65536 and 0 < int(port) < 65536):
            raise TorControlError("onion service ports must be within 1..65535")
        if publish_timeout is not None:
            await self._expect_ok("SETEVENTS HS_DESC")
        reply = await self.command(f"ADD_ONION NEW:ED25519-V3 Flags=DiscardPK "
                                   f"Port={int(virtual_port)},{host}:{int(port)}")
        if not reply.ok:
            raise TorControlError(f"ADD_ONION refused: {reply.status} {' '.join(reply.lines)}")
        ids = [line[len("ServiceID="):] for line in reply.lines if line.startswith("ServiceID=")]
        if len(ids) != 1 or not _ONION_RE.match(ids[0]):
            raise TorControlError("ADD_ONION answered without a valid v3 ServiceID")
        if publish_timeout is not None:
            await self.wait_event(_UploadTracker(ids[0]), publish_timeout)
            await self._expect_ok("SETEVENTS")
        return ids[0] + ".onion"

    async def _expect_ok(self, line: str) -> None:
        reply = await self.command(line)
        if not reply.ok:
            raise TorControlError(f"{line.split()[0]} refused: {reply.status} {' '.join(reply.lines)}")

    async def del_onion(self, onion: str) -> None:
        service_id = onion[:-len(".onion")] if onion.endswith(".onion") else onion
        if not _ONION_RE.match(service_id):
            raise TorControlError(f"{onion!r} is not a v3 onion address")
        reply = await self.command(f"DEL_ONION {service_id}")
        if not reply.ok:
            raise TorControlError(f"DEL_ONION refused: {reply.status} {' '.join(reply.lines)}")

    async def close(self) -> None:
        try:
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass
