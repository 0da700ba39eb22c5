#!/usr/bin/env python3
"""The three-phase MuSig2 demo: N separate OS processes co-sign on 127.0.0.1.

    python examples/demo.py [--signers N] [--timeout SECONDS] [--no-push]

Phase 1 (discovery): every process starts a node (aiorpcx server + DHT node) and
advertises itself; process 0 (the initiator) discovers the others in the DHT.
Phase 2 (key): the initiator builds the aggregate key of all N participant keys and
its taproot output key (what a ``tr(musig(...))`` output pays to).
Phase 3 (signing): the initiator announces a signing request for a 32-byte message;
the others receive it (pushed, or found in the DHT with ``--no-push``), approve it
automatically and join; both MuSig2 rounds run; every process prints the final
signature and verifies it (BIP-340) under the output key.

Each process prints its per-phase timings; the parent checks that all N signatures
are identical and valid, and exits non-zero on any failure or timeout.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RESULT = "RESULT "


# --------------------------------------------------------------------------- worker
async def worker(index: int, n: int, bootstrap: list | None, push: bool, timeout: float,
                 epoch0: float) -> int:
    from musig2_plugin.foundation.chain import REGTEST
    from musig2_plugin.coordinator import Musig2Node
    from musig2_plugin.crypto import schnorr_verify
    from musig2_plugin.dht import DhtConfig

    marks: dict[str, float] = {}

    def mark(phase: str) -> None:
        # One time base for all processes (the parent's start), so phases line up.
        marks[phase] = round((time.time() - epoch0) * 1000, 1)

    def say(text: str) -> None:
        print(f"[node {index}] {text}", flush=True)

    node = Musig2Node(os.urandom(32), chain=REGTEST,
                      dht_config=DhtConfig(rate_limit_by="address"))
    node.on("round1:complete", lambda **kw: mark("round1"))
    node.on("round2:complete", lambda **kw: mark("round2"))
    node.on("session:failover", lambda **kw: say(
        f"coordinator {kw['silent'].hex()[:12]}… silent; epoch {kw['epoch']} coordinator "
        f"{kw['coordinator'].hex()[:12]}…"))
    node.on("session:attempt", lambda **kw: say(f"round 1 restarts (attempt {kw['attempt']})"))
    received = asyncio.Event()
    node.on("signing-request:received", lambda **kw: received.set())
    await node.start("127.0.0.1", 0, dht=True, bootstrap=[tuple(b) for b in bootstrap or []])
    mark("started")
    say(f"key {node.pubkey.hex()} listening on {node.endpoint[0]}:{node.endpoint[1]} "
        f"(DHT udp {node.dht_address[1]})")
    print(RESULT + json.dumps({"ev": "listening", "dht": list(node.dht_address)}), flush=True)
    await node.advertise_signer(nickname=f"demo-{index}", description="examples/demo.py")
    mark("advertised")
    try:
        if index == 0:
            sig, msg, q = await asyncio.wait_for(initiator(node, n, push, mark, say), timeout)
        else:
            sig, msg, q = await asyncio.wait_for(cosigner(node, received, mark, say), timeout)
    except asyncio.TimeoutError:
        say("FAILED: timed out")
        await node.stop()
        return 2
    ok = schnorr_verify(q, msg, sig)
    mark("verified")
    say(f"final signature {sig.hex()}")
    say(f"BIP-340 verification under output key {q.hex()}: {'OK' if ok else 'FAILED'}")
    say("phase timings (ms since the demo started): "
        + ", ".join(f"{k}={v}" for k, v in marks.items()))
    print(RESULT + json.dumps({"ev": "done", "index": index, "sig": sig.hex(), "msg": msg.hex(),
                               "key": q.hex(), "ok": ok, "marks": marks}), flush=True)
    await node.stop()
    return 0 if ok else 1


async def initiator(node, n: int, push: bool, mark, say):
    from musig2_plugin.coordinator import Musig2Node

    # Phase 1: discover the other N-1 signers.
    while True:
        ads = await node.find_available_signers("spend")
        if len(ads) >= n - 1:
            break
        await asyncio.sleep(0.2)
    ads = ads[:n - 1]
    mark("discovered")
    say(f"discovered {len(ads)} signers: " + ", ".join(
        f"{ad.nickname}@{ad.endpoint.host}:{ad.endpoint.port}" for ad in ads))
    # Phase 2: the aggregate key and its taproot output key.
    keys = [node.pubkey] + [ad.owner for ad in ads]
    ctx = Musig2Node.aggregate_key(keys)
    mark("aggregate-key")
    say(f"aggregate key (internal) {ctx.internal_xonly().hex()}; "
        f"taproot output key {ctx.xonly().hex()}")
    # Phase 3: announce, join, sign.
    msg = hashlib.sha256(b"musig2 demo spend " + os.urandom(16)).digest()
    mark("announce")
    record = await node.announce_signing_request(keys, [msg], app_data=b"demo transaction",
                                                 metadata="demo", push=push)
    mark("announced")
    say(f"announced signing request {record.request_id.hex()[:16]}… for message {msg.hex()}")
    (sid,) = await node.join_signing_request(record)
    mark("joined")
    sig = await node.get_final_signature(sid)
    mark("final")
    return sig, msg, ctx.xonly()


async def cosigner(node, received: asyncio.Event, mark, say):
    from musig2_plugin.coordinator import Musig2Node

    # Either the initiator pushed the request to us, or we find it in the DHT.
    via = "push"
    while True:
        if received.is_set():
            found = list(r.record for r in node.requests.values())
        else:
            found = await node.find_signing_requests_for_me()
            via = "dht"
        if found:
            break
        try:
            await asyncio.wait_for(received.wait(), 0.3)
        except asyncio.TimeoutError:
            pass
    record = found[0]
    mark("request-found")
    say(f"signing request {record.request_id.hex()[:16]}… from {record.creator.hex()[:16]}… "
        f"found ({via}); auto-approving")
    (sid,) = await node.join_signing_request(record)
    mark("joined")
    sig = await node.get_final_signature(sid)
    mark("final")
    return sig, record.messages[0], Musig2Node.aggregate_key(record.keys).xonly()


# --------------------------------------------------------------------------- parent
async def run_parent(n: int, push: bool, timeout: float) -> int:
    print(f"MuSig2 demo: {n} signers as {n} separate processes on 127.0.0.1", flush=True)
    t0 = time.perf_counter()
    epoch0 = time.time()
    procs = []
    results: dict[int, dict] = {}

    async def spawn(i: int, bootstrap):
        args = [sys.executable, os.path.abspath(__file__), "--worker", str(i), "--signers", str(n),
                "--timeout", str(timeout), "--bootstrap", json.dumps(bootstrap),
                "--epoch0", repr(epoch0)]
        if not push:
            args.append("--no-push")
        p = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        procs.append(p)
        return p

    async def pump(i: int, p, first_line: asyncio.Future | None):
        while True:
            raw = await p.stdout.readline()
            if not raw:
                return
            line = raw.decode().rstrip()
            if line.startswith(RESULT):
                data = json.loads(line[len(RESULT):])
                if data["ev"] == "listening" and first_line is not None and not first_line.done():
                    first_line.set_result(data)
                elif data["ev"] == "done":
                    results[i] = data
            else:
                print(line, flush=True)

    try:
        first = await spawn(0, [])
        ready = asyncio.get_running_loop().create_future()
        pumps = [asyncio.ensure_future(pump(0, first, ready))]
        boot = (await asyncio.wait_for(ready, timeout))["dht"]
        for i in range(1, n):
            p = await spawn(i, [boot])
            pumps.append(asyncio.ensure_future(pump(i, p, None)))
        # Fail fast: a process that dies (non-zero) dooms the n-of-n signature.
        waits = {asyncio.ensure_future(p.wait()): i for i, p in enumerate(procs)}
        pending = set(waits)
        deadline = asyncio.get_running_loop().time() + timeout + 10
        while pending:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise asyncio.TimeoutError
            done, pending = await asyncio.wait(pending, timeout=left,
                                               return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut.result() != 0:
                    print(f"DEMO FAILED: process {waits[fut]} exited with code {fut.result()}",
                          flush=True)
                    return 1
        codes = [p.returncode for p in procs]
        await asyncio.gather(*pumps)
    except asyncio.TimeoutError:
        print("DEMO FAILED: timed out", flush=True)
        return 2
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    wall = (time.perf_counter() - t0) * 1000
    sigs = {r["sig"] for r in results.values()}
    ok = (all(c == 0 for c in codes) and len(results) == n and len(sigs) == 1
          and all(r["ok"] for r in results.values()))
    print("\nper-phase timings (ms since the demo started, one clock for all processes):",
          flush=True)
    phases = ["started", "advertised", "discovered", "aggregate-key", "announced",
              "request-found", "joined", "round1", "round2", "final", "verified"]
    print("  node  " + "".join(f"{p:>14}" for p in phases))
    for i in sorted(results):
        marks = results[i]["marks"]
        print(f"  {i:>4}  " + "".join(f"{marks.get(p, ''):>14}" for p in phases))
    init = results.get(0, {}).get("marks", {})
    if "announce" in init and results:
        last = max(r["marks"].get("final", 0) for r in results.values())
        print(f"announce -> final signature: {init['final'] - init['announce']:.1f} ms at the "
              f"initiator, {last - init['announce']:.1f} ms until the last process had it",
              flush=True)
    print(f"wall time (all processes): {wall:.0f} ms", flush=True)
    if ok:
        print(f"DEMO OK: {n} processes hold the same valid signature {sigs.pop()}", flush=True)
        return 0
    print(f"DEMO FAILED: exit codes {codes}, results from {sorted(results)}, "
          f"{len(sigs)} distinct signatures", flush=True)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signers", "-n", type=int, default=3,
                    help="number of processes (2 .. constants.MAX_REQUEST_KEYS)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up")
    ap.add_argument("--no-push", action="store_true",
                    help="do not push the request; co-signers must find it in the DHT")
    ap.add_argument("--verbose", "-v", action="store_true", help="log the protocol (stderr)")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", default="[]", help=argparse.SUPPRESS)
    ap.add_argument("--epoch0", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from musig2_plugin.foundation import constants as C
    if args.signers < 2 or args.signers > C.MAX_REQUEST_KEYS:
        # A signing request names at most MAX_REQUEST_KEYS keys (records layer).
        ap.error(f"--signers must be within 2..{C.MAX_REQUEST_KEYS}")
    if args.verbose:
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("musig2_plugin").setLevel(logging.DEBUG)
        os.environ["MUSIG2_DEMO_VERBOSE"] = "1"     # inherited by the worker processes
    elif os.environ.get("MUSIG2_DEMO_VERBOSE"):
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("musig2_plugin").setLevel(logging.DEBUG)
    if args.worker is None:
        return asyncio.run(run_parent(args.signers, not args.no_push, args.timeout))
    return asyncio.run(worker(args.worker, args.signers, json.loads(args.bootstrap),
                              not args.no_push, args.timeout,
                              time.time() if args.epoch0 is None else args.epoch0))


if __name__ == "__main__":
    sys.exit(main())
