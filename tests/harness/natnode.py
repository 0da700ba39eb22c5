"""A Musig2Node in its own process (and namespace), driven over a Unix socket.

Why: on the test internet every machine is a network namespace, and a process can live in only
one, so each node runs as its own process (``python -m tests.harness.natnode``) started with
``Host.spawn``. The test drives it through a Unix socket in a shared directory (Unix sockets
with a path are not scoped by network namespaces), one JSON line per command and answer.

Commands (``NatNode.call(op, **args)``):
    info                          key, listen and advertised endpoints, relays in use
    ping key=hex endpoint=ep      one envelope to that key there: "delivered" or why not
    learn peers=[[ip, port]..]    dial-back through these peers (Musig2Node.learn_reachability)
    use_relays relays=[ep..]      reservations at relays (Endpoint.to_json forms)
    enable_relay                  relay for others
    add_peer key=hex endpoint=ep  what discovery would tell it
    announce keys=[hex] msg=hex app_data=hex     -> record hex
    join record=hex               -> session ids (hex)
    final sid=hex timeout=s       -> final signature (hex)
    relay_stats                   what this node relayed (messages, bytes, per client)
    dht_contacts                  the addresses in this node's DHT routing table
    reach peers=[[ip, port]..]    dial-back, else a relay among peers/DHT contacts (reach_out)
    advertise nickname=s / find   publish our advertisement / look up signers (timed)
    autojoin / sign_timed keys=[hex]   for benchmarks: signers join on receipt; the creator
                                  times announce -> final signature
    set_relay_drop drop=bool      make this relay swallow frames (a hostile relay)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- the process
async def _serve(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from musig2_plugin.coordinator import Musig2Node
    from musig2_plugin.foundation.chain import REGTEST
    from musig2_plugin.foundation.config import Musig2Config
    from musig2_plugin.records import Endpoint
    from musig2_plugin.records.decode import decode_record

    cfg = Musig2Config(round_timeout=5.0, coordinator_grace=3.0, heartbeat_interval=1.0,
                       join_timeout=60.0, request_timeout=6.0, connect_timeout=3.0,
                       relay_deliver_timeout=5.0, relay_probe_interval=2.0)
    seckey = bytes.fromhex(args.seckey) if args.seckey else os.urandom(32)
    node = Musig2Node(seckey, chain=REGTEST, config=cfg)
    boot = [(h, int(p)) for h, _, p in (b.rpartition(":") for b in args.bootstrap if b)]
    await node.start(args.listen, args.port, dht=args.dht, bootstrap=boot,
                     dht_client=args.dht_client)
    if args.relay:
        node.enable_relay()
    dropping = {"on": False}

    async def handle(req: dict) -> Any:
        op = req.get("op")
        if op == "info":
            return {"pubkey": node.pubkey.hex(), "listen": list(node.endpoint),
                    "advertised": None if node.public_endpoint is None
                    else node.public_endpoint.to_json(),
                    "relays": [e.to_json() for e in node.relays_in_use]}
        if op == "learn":
            r = await node.learn_reachability([Endpoint(h, p) for h, p in req["peers"]])
            return {"public_ip": r.public_ip, "reachable": r.reachable,
                    "seen": [list(x.seen) if x.seen else None for x in r.results],
                    "advertised": None if node.public_endpoint is None
                    else node.public_endpoint.to_json()}
        if op == "use_relays":
            found = await node.use_relays([Endpoint.from_json(e) for e in req["relays"]])
            return [e.to_json() for e in found]
        if op == "enable_relay":
            node.enable_relay()
            return True
        if op == "add_peer":
            node.add_peer(bytes.fromhex(req["key"]), Endpoint.from_json(req["endpoint"]))
            return True
        if op == "announce":
            record = await node.announce_signing_request(
                [bytes.fromhex(k) for k in req["keys"]], [bytes.fromhex(req["msg"])],
                app_data=bytes.fromhex(req.get("app_data", "")))
            return record.encode().hex()
        if op == "join":
            ids = await node.join_signing_request(
                decode_record(bytes.fromhex(req["record"]), chain=REGTEST))
            return [i.hex() for i in ids]
        if op == "final":
            sig = await node.get_final_signature(bytes.fromhex(req["sid"]),
                                                 timeout=float(req.get("timeout", 30)))
            return sig.hex()
        if op == "ping":
            # One signed envelope for a session nobody holds: "delivered" is the target's
            # UnknownSession refusal; anything else says why it did not arrive.
            from musig2_plugin.transport import MsgType, PeerRefused, PeerUnreachable
            env = node.transport.seal(MsgType.JOIN, os.urandom(32), b"{}")
            try:
                await node.transport.send(Endpoint.from_json(req["endpoint"]), env,
                                          to=bytes.fromhex(req["key"]))
            except PeerRefused as exc:
                return "delivered" if "UnknownSession" in str(exc) else f"refused: {exc}"
            except PeerUnreachable as exc:
                return f"{type(exc).__name__}: {exc}"
            return "accepted"
        if op == "autojoin":
            # Join every request addressed to us as soon as it arrives (a bench's signer).
            def on_request(request=None, **_kw):
                asyncio.ensure_future(node.join_signing_request(request))
            node.on("signing-request:received", on_request)
            return True
        if op == "sign_timed":
            # announce -> final signature here, timed inside this process (no driver latency)
            t0 = time.perf_counter()
            record = await node.announce_signing_request(
                [bytes.fromhex(k) for k in req["keys"]], [os.urandom(32)], app_data=b"bench")
            ids = await node.join_signing_request(record)
            await node.get_final_signature(ids[0], timeout=60)
            return time.perf_counter() - t0
        if op == "advertise":
            await node.advertise_signer(nickname=req.get("nickname", ""))
            return node.advertised_endpoint.to_json()
        if op == "find":
            t0 = time.perf_counter()
            ads = await node.find_available_signers()
            return {"seconds": time.perf_counter() - t0,
                    "found": sorted(ad.owner.hex() for ad in ads)}
        if op == "reach":
            return await node.reach_out([tuple(p) for p in req.get("peers", [])])
        if op == "dht_contacts":
            return [] if node.dht is None else [list(c) for c in node.dht.contacts()]
        if op == "relay_stats":
            relay = node.transport.relay
            if relay is None:
                return None
            return {"messages": relay.stats.messages, "bytes": relay.stats.bytes,
                    "probes": relay.stats.probes,
                    "per_client": {k.hex(): v for k, v in relay.stats.per_client.items()},
                    "reservations": len(relay.reservations),
                    "refusals": relay.stats.refusals}
        if op == "set_relay_drop":
            relay = node.transport.relay
            if req.get("drop") and not dropping["on"]:
                dropping["on"] = True

                async def drop(_args):
                    await asyncio.sleep(3600)
                relay._send = drop
            return True
        raise ValueError(f"unknown op {op!r}")

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    out = {"ok": await handle(json.loads(line))}
                except Exception as exc:  # answered, never fatal: the test reads the error
                    out = {"error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(out).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    if os.path.exists(args.control):
        os.unlink(args.control)
    server = await asyncio.start_unix_server(on_client, path=args.control)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"ready": True, "pubkey": node.pubkey.hex()}), flush=True)
    await stop.wait()
    server.close()
    await node.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--seckey", default="")
    ap.add_argument("--relay", action="store_true")
    ap.add_argument("--dht", action="store_true", help="also run a DHT node (UDP, same port)")
    ap.add_argument("--bootstrap", action="append", default=[], help="DHT peer ip:port")
    ap.add_argument("--dht-client", action="store_true",
                    help="join the DHT in client mode (until reach proves us reachable)")
    asyncio.run(_serve(ap.parse_args()))


# ----------------------------------------------------------------------------- the driver
class NatNodeError(RuntimeError):
    """The node answered a command with an error, or did not start."""


class NatNode:
    """Start a node process on ``host`` (a tests.harness.netns.Host) and drive it."""

    def __init__(self, host, workdir: Path, *, port: int, relay: bool = False,
                 listen: str = "0.0.0.0", name: str = "node", dht: bool = False,
                 bootstrap: tuple[str, ...] = (), dht_client: bool = False) -> None:
        self.host = host
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.control = str(workdir / f"{host.name}-{name}.sock")
        self.log_path = workdir / f"{host.name}-{name}.log"
        argv = [sys.executable, "-m", "tests.harness.natnode", "--listen", listen,
                "--port", str(port), "--control", self.control]
        if relay:
            argv.append("--relay")
        if dht:
            argv.append("--dht")
        if dht_client:
            argv.append("--dht-client")
        for b in bootstrap:
            argv += ["--bootstrap", b]
        with open(self.log_path, "ab") as log:
            self.proc = host.spawn(name, argv, cwd=str(REPO), log=log,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 30
        while not os.path.exists(self.control):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise NatNodeError(f"{name} on {host.name} did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.port = port
        self.pubkey = self.call("info")["pubkey"]

    def call(self, op: str, *, wait: float = 120, **args: Any) -> Any:
        """Run one command; ``wait`` bounds how long we wait for its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(wait)
            s.connect(self.control)
            s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise NatNodeError(f"{self.name}: connection closed\n{self.log_tail()}")
                buf += chunk
        answer = json.loads(buf)
        if "error" in answer:
            raise NatNodeError(f"{self.name} {op}: {answer['error']}")
        return answer["ok"]

    def relay_endpoint(self) -> list:
        """This node as a relay, in Endpoint.to_json form (its public address)."""
        return [self.host.ip, self.port, "relay", self.pubkey]

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        from . import procs
        procs.stop(self.proc)


if __name__ == "__main__":
    main()
