#!/usr/bin/env python3
"""Where a broadcast's time goes on the regtest chain: the node's RPC, ElectrumX on a fresh
connection, and an Electrum 4.8 daemon (its own ``broadcast`` command, any other server request,
and the same transaction sent a second time). Figures go to docs/electrum-edge.md section 7
("Where the signed -> broadcast time went").

    .venv/bin/python bench/bench_edge_broadcast.py [--rounds N]      (needs root, like the tests)

Why this exists: the plugin's signed -> broadcast step took 0.7-1.8 s while its own code between
"signed" and the send takes milliseconds; this shows the rest is the Electrum daemon's server
connection (Electrum's traffic padding holds each message up to 1 s), not ElectrumX or bitcoind.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.harness import procs  # noqa: E402
from tests.harness.chain import RegtestChain, electrum_protocol_call, wait_until  # noqa: E402
from tests.harness.wallets import start_wallets, stop_wallets, wait_for_height  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chain = RegtestChain()
    wallets = []
    try:
        chain.start()
        wallets = start_wallets(chain, 1, names=["bench"])
        w = wallets[0]
        addr = w.new_address()
        chain.fund(addr, "1.0")
        chain.mine(1)
        wait_for_height(wallets, chain.node.height())
        wait_until(lambda: w.balance()["confirmed"] == Decimal("1.0"), timeout=60,
                   what="the wallet funded", interval=0.1)
        port = int(chain.electrum_server.split(":")[1])
        legs: dict[str, list[float]] = {k: [] for k in (
            "bitcoind sendrawtransaction", "ElectrumX broadcast (fresh connection)",
            "Electrum daemon broadcast", "Electrum daemon getaddressunspent",
            "Electrum daemon broadcast, same tx again")}

        def timed(name, fn):
            t = time.perf_counter()
            fn()
            legs[name].append(time.perf_counter() - t)

        for _ in range(args.rounds):
            for how in ("bitcoind", "electrumx", "daemon"):
                raw = w.cmd("payto", destination=addr, amount="0.001", feerate=2)
                if how == "bitcoind":
                    timed("bitcoind sendrawtransaction",
                          lambda: chain.node.call("sendrawtransaction", raw))
                elif how == "electrumx":
                    timed("ElectrumX broadcast (fresh connection)",
                          lambda: electrum_protocol_call(port, "blockchain.transaction.broadcast", [raw]))
                else:
                    timed("Electrum daemon getaddressunspent",
                          lambda: w.call("getaddressunspent", address=addr))
                    timed("Electrum daemon broadcast", lambda: w.call("broadcast", tx=raw))
                    timed("Electrum daemon broadcast, same tx again", lambda: w.call("broadcast", tx=raw))
                txid = chain.node.call("decoderawtransaction", raw)["txid"]
                wait_until(lambda: w.tx_confirmations(txid) is not None, timeout=30,
                           what="the wallet to see its send", interval=0.05)
        result = {k: {"median_ms": round(statistics.median(v) * 1000, 1),
                      "min_ms": round(min(v) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
                  for k, v in legs.items()}
        for k, v in result.items():
            print(f"{k:<45} median {v['median_ms']:>8.1f} ms  (min {v['min_ms']}, max {v['max_ms']})")
        print("RESULT " + json.dumps(result))
    finally:
        stop_wallets(wallets)
        chain.stop()
        procs.stop_all()


if __name__ == "__main__":
    main()
