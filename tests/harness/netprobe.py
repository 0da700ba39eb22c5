"""A tiny network probe the test network's tests run inside namespaces (standard library only).

Why a script of its own: checking what a NAT does needs a server that says which address and
port it sees a client from, and a client that can pick its source port; both run as separate
processes inside different namespaces.

    netprobe.py tcp-serve PORT            answer each connection with "ip:port" of the peer
    netprobe.py udp-serve PORT            answer each datagram with "ip:port" of its sender
    netprobe.py tcp-ask HOST PORT         print the server's answer; exit 2 when unreachable
    netprobe.py udp-ask SRCPORT HOST:PORT [HOST:PORT ...]
                                          from one socket bound to SRCPORT, ask each server and
                                          print one answer per line (exit 2 on silence)
"""
from __future__ import annotations

import socket
import sys


def tcp_serve(port: int) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, addr = srv.accept()
        with conn:
            conn.sendall(f"{addr[0]}:{addr[1]}\n".encode())


def udp_serve(port: int) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        _data, addr = srv.recvfrom(64)
        srv.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)


def tcp_ask(host: str, port: int) -> int:
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.settimeout(3)
            print(s.recv(64).decode().strip())
            return 0
    except OSError as exc:
        print(f"FAIL {exc!r}")
        return 2


def udp_ask(src_port: int, targets: list[str]) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", src_port))
    s.settimeout(3)
    for target in targets:
        host, _, port = target.rpartition(":")
        s.sendto(b"?", (host, int(port)))
        try:
            data, _ = s.recvfrom(64)
        except OSError as exc:
            print(f"FAIL {exc!r}")
            return 2
        print(data.decode())
    return 0


def main(argv: list[str]) -> int:
    cmd, *rest = argv
    if cmd == "tcp-serve":
        tcp_serve(int(rest[0]))
    elif cmd == "udp-serve":
        udp_serve(int(rest[0]))
    elif cmd == "tcp-ask":
        return tcp_ask(rest[0], int(rest[1]))
    elif cmd == "udp-ask":
        return udp_ask(int(rest[0]), rest[1:])
    else:
        print(f"unknown command {cmd!r}", file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
