"""A DHT node in its own process, for tests/dht/test_dht_multiprocess.py.

Usage: python dht_proc_node.py BOOT_HOST:BOOT_PORT FIRST_SIGNER COUNT
Starts a node on 127.0.0.1, joins through the bootstrap address, publishes
COUNT advertisements (signers FIRST_SIGNER..), prints "READY <port> <stored>"
and then serves until its stdin closes.
"""
from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dht_netutil import FAST, make_ad  # noqa: E402
from musig2_plugin.foundation.chain import REGTEST  # noqa: E402
from musig2_plugin.dht import DhtNode  # noqa: E402


async def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    first, count = int(sys.argv[2]), int(sys.argv[3])
    node = DhtNode(FAST, chain=REGTEST)
    await node.start(bootstrap=[(host, int(port))])
    stored = 0
    for i in range(first, first + count):
        stored += await node.publish(make_ad(i))
    print(f"READY {node.port} {stored}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # returns at EOF
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
