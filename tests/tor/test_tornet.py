"""The private Tor network itself: consensus, circuits to loopback, onion services, control-port
authentication, and that nothing in any torrc can reach the real Tor network."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.harness.tornet import (
    LOOPBACK,
    PrivateTorNetwork,
    TorNetError,
    control_session,
    foreign_authority_lines,
    socks5_connect,
)

pytestmark = [pytest.mark.slow]


class EchoServer:
    """A loopback TCP server that sends back what it receives (the far end of a Tor circuit)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                data = conn.recv(4096)
                conn.sendall(b"echo:" + data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> EchoServer:
    server = EchoServer()
    yield server
    server.close()


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    with sock:
        sock.sendall(payload)
        out = b""
        while not out.endswith(payload):
            chunk = sock.recv(4096)
            if not chunk:
                break
            out += chunk
        return out


def test_consensus_lists_every_relay_and_startup_is_measured(tor_network: PrivateTorNetwork) -> None:
    relays = tor_network.relays()
    assert len(relays) == 7
    assert {n.fingerprint for n in relays} <= tor_network._consensus_relays()
    assert tor_network.startup_seconds is not None and tor_network.startup_seconds > 0
    print(f"private Tor network up in {tor_network.startup_seconds:.1f} s")


def test_every_torrc_names_only_our_authorities(tor_network: PrivateTorNetwork) -> None:
    client = tor_network.add_client("torrc-check", control=None)
    try:
        torrcs = tor_network.torrcs()
        assert client.torrc in torrcs and len(torrcs) >= 8
        assert len(tor_network.authority_lines) == 3
        for path in torrcs:
            assert foreign_authority_lines(path.read_text(), tor_network.authority_lines) == [], path
    finally:
        tor_network.stop_node(client)


def test_the_torrc_check_catches_every_way_out() -> None:
    ours = ["DirAuthority a orport=1 no-v2 v3ident=AA 127.0.0.1:2 BB"]
    good = "TestingTorNetwork 1\nUseDefaultFallbackDirs 0\n" + ours[0] + "\n"
    assert foreign_authority_lines(good, ours) == []
    foreign = "DirAuthority moria1 orport=9201 v3ident=D586 128.31.0.39:9231 F533"
    assert foreign_authority_lines(good + foreign, ours) == [foreign]
    assert foreign_authority_lines(good + "FallbackDir 1.2.3.4:80 orport=1 id=AB", ours) != []
    assert foreign_authority_lines(good + "AlternateDirAuthority x 1.2.3.4:80 AB", ours) != []
    assert foreign_authority_lines(good.replace("UseDefaultFallbackDirs 0", "UseDefaultFallbackDirs 1"), ours) != []
    assert foreign_authority_lines(good.replace("UseDefaultFallbackDirs 0\n", ""), ours) == [
        "missing: UseDefaultFallbackDirs 0"]
    assert foreign_authority_lines(good.replace("TestingTorNetwork 1\n", ""), ours) == [
        "missing: TestingTorNetwork 1"]
    assert "missing: DirAuthority" in foreign_authority_lines(
        "TestingTorNetwork 1\nUseDefaultFallbackDirs 0\n", ours)


def test_a_client_reaches_a_loopback_server_through_the_exits(tor_network: PrivateTorNetwork,
                                                              echo: EchoServer) -> None:
    client = tor_network.add_client("to-loopback", control=None)
    try:
        reply = _roundtrip(socks5_connect(client.socks_port, LOOPBACK, echo.port), b"hello")
        assert reply == b"echo:hello"
        assert echo.accepted == 1
    finally:
        tor_network.stop_node(client)


def test_exits_refuse_anything_outside_loopback(tor_network: PrivateTorNetwork) -> None:
    client = tor_network.add_client("outside", control=None)
    try:
        # A documentation address: no exit's policy accepts it, so the circuit is refused by Tor
        # itself (reply code != 0) before any packet could leave the machine.
        with pytest.raises(TorNetError, match="reply code"):
            socks5_connect(client.socks_port, "192.0.2.1", 80, timeout=60)
    finally:
        tor_network.stop_node(client)


def test_an_onion_service_is_reachable_from_another_client(tor_network: PrivateTorNetwork,
                                                           echo: EchoServer, tmp_path: Path) -> None:
    hs_dir = tmp_path / "hs"
    service = tor_network.add_client(
        "hs", control=None,
        extra=[f"HiddenServiceDir {hs_dir}", f"HiddenServicePort 80 {LOOPBACK}:{echo.port}"])
    visitor = tor_network.add_client("visitor", control=None)
    try:
        onion = (hs_dir / "hostname").read_text().strip()
        assert onion.endswith(".onion") and len(onion) == 62
        deadline = time.monotonic() + 120
        while True:  # the descriptor reaches the HSDirs a little after the service bootstraps
            try:
                reply = _roundtrip(socks5_connect(visitor.socks_port, onion, 80), b"onion")
                break
            except (TorNetError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert reply == b"echo:onion"
    finally:
        tor_network.stop_node(visitor)
        tor_network.stop_node(service)


def test_control_port_cookie_and_password_authentication(tor_network: PrivateTorNetwork) -> None:
    cookie = tor_network.add_client("ctl-cookie", control="cookie")
    pw = tor_network.add_client("ctl-password", control="password", password="s3cret pass")
    try:
        results = control_session(cookie, ["GETINFO version"])
        assert [status for status, _ in results] == ["250", "250"]
        assert "version=0.4.9" in results[1][1][0]
        results = control_session(pw, ["GETINFO status/bootstrap-phase"], auth="password")
        assert [status for status, _ in results] == ["250", "250"]
        assert "PROGRESS=100" in results[1][1][0]
        # A wrong password and a cookie on a password-only port are refused (515).
        assert control_session(pw, ["GETINFO version"], auth="password", password="wrong")[0][0] == "515"
        assert control_session(cookie, ["GETINFO version"], cookie=b"\x00" * 32)[0][0] == "515"
        assert control_session(cookie, ["GETINFO version"], auth="password", password="x")[0][0] == "515"
    finally:
        tor_network.stop_node(cookie)
        tor_network.stop_node(pw)


def test_constructor_refuses_a_network_too_small_for_onion_services() -> None:
    with pytest.raises(ValueError, match="3 authorities"):
        PrivateTorNetwork(authorities=2)
    with pytest.raises(ValueError, match="6 relays"):
        PrivateTorNetwork(authorities=3, relays=1, exits=1)


def test_a_client_torrc_naming_another_directory_is_refused_before_tor_starts(
        tor_network: PrivateTorNetwork) -> None:
    before = len(tor_network.nodes)
    with pytest.raises(TorNetError, match="could reach the real Tor network"):
        tor_network.add_client("sneaky", control=None,
                               extra=["FallbackDir 192.0.2.10:80 orport=9001 id=" + "A" * 40])
    assert len(tor_network.nodes) == before   # nothing was started
