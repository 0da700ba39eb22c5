"""The test internet behaves like the real one: NAT kinds, reachability, and a clean teardown.

Everything here is real: kernel namespaces, veths, nft NAT in router namespaces, TCP/UDP sockets
of tests/harness/netprobe.py. What a NAT does is checked from outside, as a peer sees it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.harness import netns
from tests.harness.netns import Internet, NatKind, NetnsUnavailable, probe_script

pytestmark = [pytest.mark.netns]
REPO = Path(__file__).resolve().parents[2]
PROBE = str(probe_script())


def _serve(host: netns.Host, kind: str, port: int):
    proc = host.spawn(f"probe-{kind}-{port}", [sys.executable, PROBE, f"{kind}-serve", str(port)])
    deadline = time.monotonic() + 10
    proto = "-t" if kind == "tcp" else "-u"
    while time.monotonic() < deadline:
        out = host.run(["ss", "-Hln", proto, f"sport = :{port}"], check=False).stdout
        if out.strip():
            return proc
        time.sleep(0.05)
    raise AssertionError(f"{kind} probe on {host.name}:{port} did not start")


def _ask(host: netns.Host, ip: str, port: int) -> str:
    res = host.run([sys.executable, PROBE, "tcp-ask", ip, str(port)], check=False, timeout=15)
    return res.stdout.strip()


def test_nat_kinds_seen_from_outside(internet: Internet) -> None:
    srv1 = internet.add_public("srv1")
    srv2 = internet.add_public("srv2")
    fwd = internet.add_home("fwd", NatKind.FORWARD, hosts=["alice"], forward_ports=[7800])
    masq = internet.add_home("masq", NatKind.MASQUERADE, hosts=["bob", "bob2"])
    rnd = internet.add_home("rnd", NatKind.RANDOM, hosts=["carol"])
    alice, (bob, bob2), carol = fwd.hosts[0], masq.hosts, rnd.hosts[0]
    assert srv1.ip.startswith("203.0.113.") and fwd.public_ip.startswith("203.0.113.")
    assert bob.ip.startswith("192.168.") and bob.home is masq and srv1.home is None

    for s in (srv1, srv2):
        _serve(s, "tcp", 5000)
        _serve(s, "udp", 5001)
    for h in (alice, bob, carol):
        _serve(h, "tcp", 7800)

    # Outbound: every home reaches the public segment, seen from its router's public address;
    # the two machines behind one NAT share it.
    for h in (alice, bob, bob2, carol):
        seen_ip, _, seen_port = _ask(h, srv1.ip, 5000).partition(":")
        assert seen_ip == h.home.public_ip, (h.name, seen_ip)
        assert seen_port.isdigit()

    # Inbound: only the port forward lets a public host in, and it shows the caller's real address.
    assert _ask(srv1, fwd.public_ip, 7800).partition(":")[0] == srv1.ip
    assert _ask(srv1, masq.public_ip, 7800).startswith("FAIL")
    assert _ask(srv1, rnd.public_ip, 7800).startswith("FAIL")
    assert _ask(srv1, bob.ip, 7800).startswith("FAIL")          # private addresses do not route
    assert _ask(srv1, fwd.public_ip, 7801).startswith("FAIL")   # only the forwarded port

    # Port mapping: one UDP socket asks two servers. Plain masquerade keeps one mapping (the
    # source port survives), the random kind maps each destination anew (symmetric-style).
    def mapped(h: netns.Host) -> list[str]:
        out = h.run([sys.executable, PROBE, "udp-ask", "40123",
                     f"{srv1.ip}:5001", f"{srv2.ip}:5001"], timeout=15).stdout.split()
        return [line.rpartition(":")[2] for line in out]

    assert mapped(bob) == ["40123", "40123"]
    rnd_ports = mapped(carol)
    assert len(rnd_ports) == 2 and rnd_ports[0] != rnd_ports[1], rnd_ports
    assert "40123" not in rnd_ports


def test_names_and_arguments_are_checked(internet: Internet) -> None:
    internet.add_public("srv1")
    with pytest.raises(ValueError):
        internet.add_public("srv1")
    with pytest.raises(ValueError):
        internet.add_home("h", NatKind.FORWARD, hosts=["x"])          # forward without a port
    with pytest.raises(ValueError):
        internet.add_home("h", NatKind.MASQUERADE, hosts=["x"], forward_ports=[1])
    with pytest.raises(ValueError):
        internet.add_public("a name too long")


def test_without_root_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # os.geteuid is replaced (the only way to be non-root inside a root test run); everything
    # after it is the real constructor.
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(NetnsUnavailable) as info:
        Internet()
    msg = str(info.value)
    assert "\n" not in msg and "root" in msg and "uid 1000" in msg and "bootstrap" in msg


# ------------------------------------------------------------------------------------------
# Teardown: after a normal end, an exception, Ctrl-C, SIGTERM, and (by the next run) SIGKILL.

INNER = textwrap.dedent('''
    import json, os, sys, time
    sys.path.insert(0, {repo!r})
    from tests.harness.netns import Internet, NatKind, namespace_pids
    mode = sys.argv[1]
    net = Internet()
    net.add_public("relay1")
    home = net.add_home("fwd", NatKind.FORWARD, hosts=["alice"], forward_ports=[7800])
    net.add_home("masq", NatKind.MASQUERADE, hosts=["bob", "bob2"])
    proc = home.hosts[0].spawn("sleeper", ["sleep", "600"])
    # a process started inside a namespace without the harness: teardown must find it too
    stray = __import__("subprocess").Popen(["ip", "netns", "exec", net.host("bob").ns,
                                            "sleep", "600"], start_new_session=True)
    time.sleep(0.2)
    pids = [pid for ns in net.namespaces for pid in namespace_pids(ns)]
    print(json.dumps({{"namespaces": net.namespaces, "pids": pids}}), flush=True)
    if mode in ("close", "raise"):
        sys.stdin.readline()          # the parent has looked: go on
    if mode == "close":
        with net:
            pass
    elif mode == "raise":
        with net:
            raise RuntimeError("deliberate failure")
    elif mode in ("sigint", "sigterm", "sigkill"):
        with net:
            time.sleep(600)
''')


def _host_state() -> tuple[set[str], str, str]:
    links = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                           text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return set(netns.list_namespaces()), links, tables


@pytest.mark.parametrize("mode", ["close", "raise", "sigint", "sigterm", "sigkill"])
def test_nothing_left_behind(tmp_path: Path, mode: str) -> None:
    netns.check_available()
    before = _host_state()
    script = tmp_path / "inner.py"
    script.write_text(INNER.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    import json
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    built = json.loads(line)
    assert len(built["namespaces"]) == 7         # net, relay1, r-fwd, alice, r-masq, bob, bob2
    assert set(built["namespaces"]) <= set(netns.list_namespaces())
    assert len(built["pids"]) >= 2
    sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}.get(mode)
    if sig is not None:
        proc.send_signal(sig)
    else:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    proc.wait(60)
    if mode == "close":
        assert proc.returncode == 0, proc.stderr.read()
    elif mode == "raise":
        assert "deliberate failure" in proc.stderr.read()
    if mode == "sigkill":
        # Nobody cleaned up: the next run sweeps what a dead owner left.
        assert set(built["namespaces"]) <= set(netns.list_namespaces())
        swept = netns.sweep_orphans()
        assert set(built["namespaces"]) <= set(swept)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in built["pids"]):
        time.sleep(0.1)
    left = [p for p in built["pids"] if netns.procs.is_alive(p)]
    assert not left, f"processes left: {left}"
    after = _host_state()
    assert not set(built["namespaces"]) & after[0], "namespaces left"
    assert after == before, "the host's namespaces, veths or nft tables changed"
