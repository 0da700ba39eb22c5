#!/usr/bin/env python3
"""The main job, all the way on a regtest chain, through Electrum wallets and plugin commands.

    .venv/bin/python examples/wallet_demo.py [--inputs 2]

Starts a regtest bitcoind + ElectrumX and three Electrum 4.8 daemons (alice, bob, carol; separate
processes, throwaway directories) with the plugin zip installed, then drives them only through
plugin commands (what `electrum musig2_plugin_<name>` does):

  1. discovery  every wallet starts its co-signing node; bob and carol advertise themselves;
                alice finds them in the DHT
  2. output     alice creates tr(musig(alice, bob, carol)); bob and carol import its descriptor
  3. funding    alice pays the output with ordinary Electrum sends (one coin per input wanted)
  4. co-sign    alice requests a spend of all its coins; bob and carol review it (outputs, fee
                computed from the transaction) and approve; both MuSig2 rounds run per input
  5. broadcast  alice's wallet broadcasts the finalized transaction
  6. confirmed  a block is mined; the node's RPC shows the transaction confirmed

Prints per-phase timings; exits non-zero on any failure. Needs root (the Electrum harness runs
each daemon in a private mount namespace so its plugin authorization check sees a test key).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

P = "musig2_plugin_"


def wait(pred, what: str, timeout: float = 120.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"demo: timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=2, help="MuSig2 coins to spend in one tx (1-5)")
    args = ap.parse_args()
    if not 1 <= args.inputs <= 5:
        ap.error("--inputs must be 1..5")

    import tempfile
    from tests.harness import procs
    from tests.harness.chain import RegtestChain
    from tests.harness.electrum import build_plugin_zip
    from tests.harness.wallets import start_wallets, stop_wallets, wait_for_height, wait_for_tx

    timings: dict[str, float] = {}
    t = time.monotonic()

    def phase(name: str) -> None:
        nonlocal t
        now = time.monotonic()
        timings[name] = round(now - t, 2)
        print(f"== {name}: {timings[name]} s", flush=True)
        t = now

    chain = RegtestChain().start()
    wallets = []
    try:
        zip_path = build_plugin_zip(tempfile.mkdtemp(prefix="musig2-demo-zip-"))
        wallets = start_wallets(chain, 3, names=["alice", "bob", "carol"], plugin_zip=zip_path)
        alice, bob, carol = wallets
        phase("setup (chain, server, three Electrum daemons)")

        a = alice.cmd(P + "node_start")
        seed = f"127.0.0.1:{a['dht'][1]}"
        for w in (bob, carol):
            w.cmd(P + "node_start", bootstrap=seed)
        for w, nick in ((bob, "bob"), (carol, "carol")):
            w.cmd(P + "advertise", nickname=nick, tx_types="spend", fee=100)
        found = wait(lambda: (lambda s: s if len(s) >= 2 else None)(alice.cmd(P + "find_signers")),
                     "two signers in the DHT")
        for s in found:
            print(f"   found {s['nickname']:6} {s['pubkey']} at {s['endpoint']}")
        phase("discovery")

        keys = ",".join(s["pubkey"] for s in found)
        out = alice.cmd(P + "create_output", keys=keys, label="demo")
        for w in (bob, carol):
            assert w.cmd(P + "create_output", descriptor=out["descriptor"])["address"] == out["address"]
        print(f"   {out['descriptor']}\n   address {out['address']}")
        phase("MuSig2 output")

        chain.fund(alice.new_address(), "1.0")
        chain.mine(1)
        wait_for_height(wallets, chain.node.height())
        wait(lambda: alice.balance()["confirmed"] == Decimal("1.0"), "alice funded")
        per_coin = 10_000_000
        for _ in range(args.inputs):
            raw = alice.cli("payto", out["address"], str(Decimal(per_coin) / 10**8), "--feerate", "2")
            wait_for_tx([alice], alice.call("broadcast", tx=raw))
        chain.mine(1)
        wait_for_height(wallets, chain.node.height())
        total = per_coin * args.inputs
        wait(lambda: [o for o in alice.cmd(P + "list_outputs")
                      if o["balance"]["confirmed"] == total and len(o["coins"]) == args.inputs],
             "funding confirmed")
        phase(f"funding ({args.inputs} coins, ordinary Electrum sends, 1 block)")

        dest = carol.new_address()
        req = alice.cmd(P + "request_spend", outputs=json.dumps([[dest, total - 20_000]]), feerate=2)
        rid = req["request_id"]
        for w in (bob, carol):
            r = wait(lambda: [x for x in w.cmd(P + "list_requests") if x["request_id"] == rid],
                     "request delivered")[0]
            if r["status"] != "pending":
                raise SystemExit(f"demo: {w.name} refused the request: {r['error']}")
            outs = ", ".join(f"{o['value_sats']} sat -> {o['address']}" for o in r["review"]["outputs"])
            print(f"   {w.name} reviews: {outs}; fee {r['review']['fee_sats']} sat")
            w.cmd(P + "approve", request_id=rid)
        done = wait(lambda: (lambda s: s if s["status"] in ("broadcast", "failed") else None)(
            alice.cmd(P + "session_status", request_id=rid)), "signatures and broadcast")
        if done["status"] != "broadcast":
            raise SystemExit(f"demo: signing failed: {done['error']}")
        print(f"   session phases (s after request): {done['phases']}")
        phase(f"co-sign {args.inputs} input(s) + broadcast")

        txid = done["broadcast_txid"]
        chain.mine(1)
        info = chain.getrawtransaction(txid)
        if info.get("confirmations", 0) < 1:
            raise SystemExit("demo: transaction not confirmed")
        print(f"   {txid} confirmed in block {info['blockhash']}")
        phase("confirmed")
        print("RESULT " + json.dumps({"txid": txid, "inputs": args.inputs, "timings_s": timings}))
        return 0
    finally:
        stop_wallets(wallets)
        chain.stop()
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
