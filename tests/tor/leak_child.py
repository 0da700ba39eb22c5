"""The Tor-only node of the leak test, run inside the leak namespace (tests/harness/leakns.py).

    python leak_child.py REPO SOCKS_HOST SOCKS_PORT CONTROL_PORT COOKIE_FILE LISTEN_HOST

Outbound only through the SOCKS port, inbound only through its ephemeral onion service (made on
the control port); it prints one JSON line with its key and onion endpoint, auto-approves the
first signing request pushed to it, joins, and prints the final signature (or the error).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

sys.path.insert(0, sys.argv[1])

from musig2_plugin.coordinator import Musig2Node  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.foundation.config import Musig2Config  # noqa: E402
from musig2_plugin.tor import ControlSettings, OnionService, ProxySpec, socks_connector  # noqa: E402

CFG = Musig2Config().with_(round_timeout=30.0, coordinator_grace=10.0, heartbeat_interval=3.0,
                           connect_timeout=60.0, request_timeout=60.0)


def say(**kw) -> None:
    print(json.dumps(kw), flush=True)


async def main(socks_host: str, socks_port: int, control_port: int, cookie: str, listen: str) -> None:
    node = Musig2Node(os.urandom(32), chain=REGTEST, config=CFG,
                      connector=socks_connector(ProxySpec(socks_host, socks_port)))
    await node.start(listen, 0, dht=False)
    service = await OnionService.create(ControlSettings(socks_host, control_port, cookie_file=cookie),
                                        node.endpoint)
    node.set_public_endpoint(service.endpoint)
    loop = asyncio.get_running_loop()
    final = loop.create_future()

    def on_received(**kw):
        asyncio.ensure_future(node.join_signing_request(kw["request"]))

    def on_final(**kw):
        if not final.done():
            final.set_result(kw["signature"])

    node.on("signing-request:received", on_received)
    node.on("signature:finalized", on_final)
    say(pubkey=node.pubkey.hex(), onion=list(service.endpoint))
    try:
        say(signature=(await asyncio.wait_for(final, 300)).hex())
    except Exception as exc:
        say(error=repr(exc))
    finally:
        await asyncio.sleep(1)   # let the last message reach the peer
        await service.close()
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]))
