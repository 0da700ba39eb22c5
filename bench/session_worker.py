#!/usr/bin/env python3
"""One participant of bench_session_series.py, in its own OS process.

Protocol on stdin/stdout (one JSON object per line):
  out {"ev": "listening", "key": hex, "endpoint": [host, port]}
  in  {"peers": {key hex: [host, port], ...}}         every other participant
  in  {"announce": [key hex, ...]}                     (initiator) announce one request
  out {"ev": "announced", "rid": hex, "t": wall-clock seconds just before announcing}
  out {"ev": "final", "rid": hex, "t": wall-clock seconds}          per signature here
  out {"ev": "aborted", "rid": hex, "reason": str, "culprits": [hex]}
  in  {"stop": true}
Every participant joins each request as soon as it reaches it (automatic approval).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.foundation.config import Musig2Config  # noqa: E402


def out(**kw) -> None:
    print(json.dumps(kw), flush=True)


async def main() -> None:
    node = Musig2Node(os.urandom(32), config=Musig2Config(), chain=REGTEST)
    await node.start("127.0.0.1", 0, dht=False)
    node.on("signing-request:received", lambda **kw: asyncio.ensure_future(
        node.join_signing_request(kw["request"])))
    node.on("signing-request:created", lambda **kw: asyncio.ensure_future(
        node.join_signing_request(kw["request"])))
    node.on("signature:finalized", lambda **kw: out(ev="final", rid=kw["request_id"].hex(),
                                                   t=time.time()))
    node.on("session:aborted", lambda **kw: out(ev="aborted", rid=kw["request_id"].hex(),
                                                reason=kw["reason"],
                                                culprits=[c.hex() for c in kw["culprits"]]))
    out(ev="listening", key=node.pubkey.hex(), endpoint=list(node.endpoint))
    loop = asyncio.get_running_loop()
    from musig2_plugin.coordinator import request_key
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        if "peers" in cmd:
            for key, ep in cmd["peers"].items():
                node.add_peer(bytes.fromhex(key), tuple(ep))
        elif "announce" in cmd:
            t = time.time()
            ann = await node.announce([bytes.fromhex(k) for k in cmd["announce"]],
                                      [os.urandom(32)])
            out(ev="announced", rid=request_key(ann.record).hex(), t=t)
        elif "stop" in cmd:
            break
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
