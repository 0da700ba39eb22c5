"""A hostile stranger in its own OS process: pushes junk at a node at a fixed rate.

Usage: junk_process.py HOST PORT TARGET_PUBKEY_HEX RATE SECONDS

Every line it writes is a JSON-RPC request the node's server must read and refuse:
signed signing requests from fresh keys addressed to the target (valid records, so each
costs the node a signature check before its stranger budget refuses it), records with a
broken signature, garbage that is not a record, and forged protocol envelopes. It never
waits for answers (it reads and drops them) and reconnects whenever the node closes its
connection. Prints one JSON line at the end: {"sent": n, "connections": n}.

A separate process because junk at 1,000/s from the same event loop would measure our
own sender, not the node's admission.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from musig2_plugin.foundation import constants as C  # noqa: E402
from musig2_plugin.crypto import plain_pubkey  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.records import SigningRequest  # noqa: E402
from musig2_plugin.transport import Envelope, MsgType  # noqa: E402


def junk_lines(target: bytes, count: int) -> list[bytes]:
    lines = []
    for i in range(count):
        kind = i % 4
        if kind in (0, 1):
            sk = os.urandom(32)
            rec = SigningRequest.create(sk, chain=REGTEST, keys=[target, plain_pubkey(sk)],
                                        messages=[os.urandom(32)], payload=os.urandom(64))
            data = rec.encode()
            if kind == 1:                              # broken signature
                data = data[:-1] + bytes([data[-1] ^ 1])
            method, arg = C.RPC_SIGNING_REQUEST, data.hex()
        elif kind == 2:
            method, arg = C.RPC_SIGNING_REQUEST, os.urandom(200).hex()
        else:
            sk = os.urandom(32)
            env = Envelope.sign(sk, chain=REGTEST, msg_type=MsgType.JOIN, session_id=os.urandom(32),
                                sender=plain_pubkey(os.urandom(32)), counter=i, body=b"{}")
            method, arg = C.RPC_MESSAGE, env.encode().hex()
        lines.append(json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                 "params": [arg]}).encode() + b"\n")
    return lines


async def main(host: str, port: int, target: bytes, rate: float, seconds: float) -> None:
    lines = junk_lines(target, 400)
    loop = asyncio.get_running_loop()
    sent = connections = 0
    writer = None
    start = loop.time()
    while loop.time() - start < seconds:
        if writer is None or writer.is_closing():
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            connections += 1
            asyncio.ensure_future(_drain(reader, writer))
        due = start + sent / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            writer.write(lines[sent % len(lines)])
            sent += 1
            if sent % 50 == 0:
                await writer.drain()
        except (ConnectionError, OSError):
            writer = None
    print(json.dumps({"sent": sent, "connections": connections}), flush=True)


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, OSError):
        pass
    writer.close()        # the node closed on us: the main loop reconnects


if __name__ == "__main__":
    h, p, t, r, s = sys.argv[1:6]
    asyncio.run(main(h, int(p), bytes.fromhex(t), float(r), float(s)))
