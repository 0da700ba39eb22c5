"""Resident memory of a DHT node holding 10,000 records.

The parent signs the records (2,000 advertisements spread over the four type
topics and 8,000 signing requests with a 600-byte opaque payload, addressed to
random keys) and writes them to a temporary file. A fresh child process starts
a real ``DhtNode`` on 127.0.0.1, notes its RSS, stores every record through the
same validating ``put_bytes`` path the store RPC uses, drops its copy of the
input, and reports RSS again (``VmRSS`` from /proc) plus a lookup check.

Usage: .venv/bin/python bench/bench_dht_memory.py [--records 10000]
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)



def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def generate(path: str, total: int) -> None:
    from musig2_plugin.foundation.chain import REGTEST
    from musig2_plugin.crypto import plain_pubkey
    from musig2_plugin.records import Advertisement, SigningRequest, TxType

    n_ads = total // 5
    types = list(TxType)
    with open(path, "wb") as f:
        for i in range(total):
            sk = os.urandom(32)
            if i < n_ads:
                rec = Advertisement.create(sk, tx_types=types[i % 4], min_amount_sat=0,
                                           max_amount_sat=10**8, host="127.0.0.1", port=1 + i % 65000,
                                           nickname=f"signer{i}", description="bench " * 10, chain=REGTEST)
            else:
                other = plain_pubkey(os.urandom(32))
                rec = SigningRequest.create(sk, keys=[plain_pubkey(sk), other],
                                            messages=[os.urandom(32)], payload=os.urandom(600),
                                            metadata="bench request", host="127.0.0.1", port=9, chain=REGTEST)
            data = rec.encode()
            for topic in rec.topics()[:1]:
                f.write(struct.pack(">H", len(data)) + topic + data)


async def child(path: str) -> dict:
    from musig2_plugin.foundation.chain import REGTEST
    from musig2_plugin.dht import DhtConfig, DhtNode

    electrum_loaded = sys.modules.get("electrum") is not None

    # production caps except slots per topic (the bench packs 1/5 of its records into 4 topics)
    node = DhtNode(DhtConfig(max_records_per_topic=10_000), chain=REGTEST)
    await node.start()
    gc.collect()
    base = rss_mb()
    t = time.perf_counter()
    statuses: dict[str, int] = {}
    with open(path, "rb") as f:
        blob = f.read()
    pos = 0
    while pos < len(blob):
        (n,) = struct.unpack(">H", blob[pos:pos + 2])
        topic, data = blob[pos + 2:pos + 22], blob[pos + 22:pos + 22 + n]
        pos += 22 + n
        s = node.records.put_bytes(topic, data)
        statuses[s] = statuses.get(s, 0) + 1
    load_s = time.perf_counter() - t
    del blob, data
    gc.collect()
    after = rss_mb()
    held = len(node.records)
    await node.stop()
    return {"electrum_loaded": electrum_loaded, "rss_base_mb": round(base, 1), "rss_mb": round(after, 1),
            "delta_mb": round(after - base, 1), "records_held": held,
            "statuses": statuses, "store_s": round(load_s, 2)}


def main() -> None:
    logging.disable(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--with-electrum", action="store_true",
                    help="let musig2_plugin import Electrum (as inside the wallet)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if not args.with_electrum:
            # A stand-alone node (musig2_plugin/__init__ only loads the Electrum
            # commands when Electrum imports): measure our node, not the wallet.
            sys.modules["electrum"] = None  # type: ignore[assignment]
        print(json.dumps(asyncio.run(child(args.child))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.bin")
        generate(path, args.records)
        flags = ["--with-electrum"] if args.with_electrum else []
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path, *flags],
                             capture_output=True, text=True, timeout=600, check=True,
                             env=dict(os.environ, PYTHONPATH=ROOT))
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"bench": "dht_memory", "records": args.records, **result}))


if __name__ == "__main__":
    main()
