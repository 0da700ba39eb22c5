"""The standalone node as the bootstrap of two real Electrum 4.8 daemons (regtest, offline,
plugin zip installed): each wallet's node joins through it with the plugin command, advertises,
and finds the other; then SIGTERM stops the standalone node cleanly (exit 0)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.electrum import ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import DaemonRPC

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
P = "musig2_plugin_"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_wallet_daemons_find_each_other_through_the_standalone_node(tmp_path):
    port = _free_udp_port()
    node = subprocess.Popen([sys.executable, "-m", "musig2_plugin.node", "--chain", "regtest",
                             "--listen", "127.0.0.1", "--port", str(port), "--data-dir",
                             str(tmp_path / "node"), "--rate-limit-by", "address"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemons = []
    try:
        deadline = time.monotonic() + 30
        while "ready:" not in (line := node.stdout.readline()):
            assert line and time.monotonic() < deadline, "standalone node did not start"
        plugin_zip = build_plugin_zip(tmp_path / "dist")
        rpcs = {}
        for name in ("alice", "bob"):
            d = ElectrumDaemon(tmp_path / name, plugin_zip=plugin_zip, name=name)
            d.start()
            daemons.append(d)
            d.create_wallet(name)
            r = DaemonRPC(d.datadir)
            path = str(d.wallet_path(name))
            rpcs[name] = (lambda r, path: lambda m, **kw: r.call(P + m, wallet_path=path, **kw))(
                r, path)
        keys = {}
        for name, call in rpcs.items():
            st = call("node_start", bootstrap=f"127.0.0.1:{port}")
            assert st["network"]["chain"] == "regtest"
            keys[name] = call("advertise", nickname=name)["pubkey"]
        for me, other in (("alice", "bob"), ("bob", "alice")):
            found = rpcs[me]("find_signers")
            assert [s["pubkey"] for s in found] == [keys[other]], found
            assert found[0]["nickname"] == other
        for call in rpcs.values():
            assert call("node_stop") == {"stopped": True}
    finally:
        for d in daemons:
            d.stop()
        node.send_signal(signal.SIGTERM)
        try:
            rc = node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
            raise
    assert rc == 0 and node.stderr.read() == ""
