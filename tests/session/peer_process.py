"""One participant as a separate OS process (killed and restarted by the tests).

Usage: peer_process.py SPEC.json
SPEC: {"seckey": hex, "peers": {key hex: [host, port]}, "request": record hex,
       "mode": "auto" | "round1-only", "rejoin": bool}
Prints one JSON object per line: {"ev": "listening", "endpoint": [...]},
{"ev": <event name>, ...} for session events, {"ev": "final", "sig": hex}.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.records import decode_record  # noqa: E402


def out(**kw) -> None:
    print(json.dumps(kw), flush=True)


def hexify(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [hexify(x) for x in v]
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)


async def main(spec: dict) -> int:
    config = Musig2Config(**spec.get("config", {}))
    node = Musig2Node(bytes.fromhex(spec["seckey"]), config=config, chain=REGTEST)
    await node.start("127.0.0.1", 0, dht=False)
    for k, ep in spec["peers"].items():
        node.add_peer(bytes.fromhex(k), tuple(ep))
    for name in ("session:ready", "session:attempt", "round1:complete", "session:aborted",
                 "signature:finalized", "session:failover"):
        node.on(name, lambda _n=name, **kw: out(ev=_n, **{k: hexify(v) for k, v in kw.items()}))
    out(ev="listening", endpoint=list(node.endpoint))
    record = decode_record(bytes.fromhex(spec["request"]), chain=REGTEST)
    manual = spec["mode"] == "round1-only"
    (sid,) = await node.join_signing_request(record, auto=not manual, rejoin=spec["rejoin"])
    if manual:
        await node.start_round1(sid, timeout=60)
        out(ev="waiting-before-round2")
        await asyncio.sleep(3600)   # the test kills us here
    sig = await node.get_final_signature(sid, timeout=60)
    out(ev="final", sig=sig.hex())
    await node.stop()
    return 0


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.exit(asyncio.run(main(json.load(f))))
