#!/usr/bin/env python3
"""The main job: N Electrum 4.8 wallets co-sign a MuSig2 spend on a real regtest chain.

    scripts/run-demo [--wallets N] [--inputs K] [--timeout S]        (sets itself up first)
    .venv/bin/python examples/wallet_demo.py [same options]            (after scripts/bootstrap.sh)

Starts a regtest bitcoind (Bitcoin Knots) and an ElectrumX in front of it, then N Electrum 4.8
daemons (alice, bob, carol, ...; separate processes, throwaway directories, loopback only), each
with the plugin zip installed and authorized and one fresh wallet, and drives them only through
Electrum's own commands and the plugin's commands (what ``electrum musig2_plugin_<name>`` does):

  discovery   every wallet starts its co-signing node and advertises itself as a signer in the
              DHT; alice finds the others there
  output      alice builds tr(musig(all N keys)) and prints its descriptor and address; the others
              import the descriptor; the node's RPC confirms the address pays to the output key
              computed here independently from the keys
  funding     alice pays the output with ordinary Electrum sends (one coin per input); 1 block
  request     alice requests a spend; each other wallet finds the request, reviews outputs and fee
              (computed by its plugin from the transaction) and approves it
  signing     both MuSig2 rounds run between the wallets' nodes; the final signature goes into the
              transaction and alice's wallet broadcasts it
  confirmed   a block is mined; the node's RPC shows the transaction in it, and the signature in
              its witness is checked (BIP-340) against the output key and the sighash

Prints per-phase timings and a ``RESULT {json}`` line; exits 0 only when every check passed,
1 on any failure, 2 on bad options, 130 on Ctrl-C (SIGINT) or SIGTERM. Everything it started is
stopped (by pid, through tests/harness/procs.py) and its directories removed, whatever happens.
Needs root: each Electrum process runs in a private mount namespace where Electrum's plugin
authorization check sees a test key (see tests/harness/electrum.py).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from decimal import Decimal
from typing import Any, Callable, Optional, TypeVar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

P = "musig2_plugin_"
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert")
#: Satoshis paid into the MuSig2 output per coin (one ordinary Electrum send each).
COIN_SATS = 10_000_000
#: What the spend leaves for the fee (the rest of each coin goes to the payee).
SPEND_MARGIN_SATS = 20_000
FEERATE = 2
RESULT = "RESULT "
T = TypeVar("T")


class DemoFailure(Exception):
    """A check of the demo failed; the message says which and why (printed, exit status 1)."""


class Interrupted(BaseException):
    """SIGTERM, handled like Ctrl-C: stop everything, exit 130 (BaseException: nothing may catch it)."""


def max_wallets() -> int:
    """The most participants one MuSig2 output and one signing request may have."""
    from musig2_plugin.foundation import constants as C
    return min(C.MAX_OUTPUT_PARTICIPANTS, C.MAX_REQUEST_KEYS, len(NAMES))


# --------------------------------------------------------------------------- printing
class Phases:
    """Wall-clock time of each phase, printed as it ends and summed up at the end."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done: list[tuple[str, float]] = []
        self._t = time.monotonic()
        self._t0 = self._t

    def start(self, title: str) -> None:
        self._t = time.monotonic()
        print(f"\n[{len(self.done) + 1}/{self.total}] {title}", flush=True)

    def end(self, name: str) -> None:
        seconds = time.monotonic() - self._t
        self.done.append((name, round(seconds, 2)))
        print(f"    -- {name}: {seconds:.2f} s", flush=True)

    def elapsed(self) -> float:
        return round(time.monotonic() - self._t0, 2)

    def summary(self) -> None:
        print("\nPer-phase timings (wall clock):", flush=True)
        for name, seconds in self.done:
            print(f"    {name:<12} {seconds:8.2f} s")
        print(f"    {'total':<12} {self.elapsed():8.2f} s", flush=True)


def say(text: str) -> None:
    print(f"    {text}", flush=True)


def short(hex_text: str, n: int = 16) -> str:
    return hex_text if len(hex_text) <= n else hex_text[:n] + "…"


# --------------------------------------------------------------------------- waiting
def wait_for(probe: Callable[[], Optional[T]], what: str, timeout: float,
             alive: Callable[[], Optional[str]], every: float = 0.2) -> T:
    """Poll until ``probe`` returns something truthy.

    Fails at once when a process died or the probe raises DemoFailure (a definite "no"); any
    other error of the probe (a daemon still busy syncing) is retried, and reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while True:
        dead = alive()
        if dead:
            raise DemoFailure(f"while waiting for {what}: {dead}")
        try:
            got = probe()
            if got:
                return got
        except DemoFailure:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {type(last).__name__}: {last})" if last else ""
            raise DemoFailure(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(every)


def all_alive(chain, wallets) -> Callable[[], Optional[str]]:
    def check() -> Optional[str]:
        for part in (chain.node, chain.server):
            dead = part.died()
            if dead:
                return dead
        for w in wallets:
            dead = w.died()
            if dead:
                return dead
        return None
    return check


def owner_of(wallets, address: str) -> str:
    """Which demo wallet an address belongs to (Electrum's own ``ismine``), for the printout."""
    for w in wallets:
        if w.cmd("ismine", address=address):
            return w.name
    return "nobody here"


# --------------------------------------------------------------------------- the phases
def phase_chain(ph: Phases, parts: dict[str, Any]):
    from tests.harness.chain import RegtestChain
    ph.start("chain: regtest bitcoind + ElectrumX on 127.0.0.1")
    chain = parts["chain"] = RegtestChain()     # known to the clean-up before anything starts
    chain.start()
    node = chain.node
    version = node.call("getnetworkinfo")["subversion"]
    say(f"bitcoind {version} RPC 127.0.0.1:{node.rpc_port}, height {node.height()} "
        f"(mature coins in its miner wallet)")
    say(f"ElectrumX {chain.electrum_server} caught up at height {chain.server.height()}")
    ph.end("chain")
    return chain


def phase_wallets(ph: Phases, chain, n: int, bundle: int = 0):
    """``bundle``: how many wallets (the first ones) run in .venv-bundle, the stand-in for
    Electrum's binary bundles (docs/bundle.md): Electrum's own dependencies only."""
    from tests.harness import procs
    from tests.harness.electrum import build_plugin_zip, require_electrum
    from tests.harness.wallets import start_wallets
    ph.start(f"wallets: {n} Electrum daemons, plugin zip installed and authorized, one wallet each")
    require_electrum()
    venvs = None
    if bundle:
        from tests.harness.bundle import BUNDLE_VENV, require_bundle_env
        require_bundle_env()
        venvs = [BUNDLE_VENV] * bundle + [None] * (n - bundle)
    zip_dir = tempfile.mkdtemp(prefix="musig2-demo-zip-")
    procs.track_dir(zip_dir)
    zip_path = build_plugin_zip(zip_dir)
    wallets = start_wallets(chain, n, names=NAMES[:n], plugin_zip=zip_path, venvs=venvs)
    for i, w in enumerate(wallets):
        st = w.cmd(P + "status")
        if st.get("plugin") != "musig2_plugin" or st.get("wallet") != "wallet":
            raise DemoFailure(f"{w.name}: the plugin is not active in its daemon: {st}")
        env = ".venv-bundle" if i < bundle else ".venv"
        say(f"{w.name:<7} Electrum {st['electrum_version']}, plugin {st['plugin']} {st['version']}, "
            f"daemon pid {w.daemon.proc.pid}, server {chain.electrum_server}, "
            f"env {env}, crypto {st.get('crypto_backend')}")
    ph.end("wallets")
    return wallets


def phase_discovery(ph: Phases, chain, wallets, timeout: float) -> list[dict[str, Any]]:
    ph.start("discovery: every wallet advertises itself as a signer; alice finds the others")
    alive = all_alive(chain, wallets)
    initiator, others = wallets[0], wallets[1:]
    first = initiator.cmd(P + "node_start")
    seed = f"127.0.0.1:{first['dht'][1]}"
    statuses = [first] + [w.cmd(P + "node_start", bootstrap=seed) for w in others]
    for w, st in zip(wallets, statuses):
        if not st.get("running"):
            raise DemoFailure(f"{w.name}: co-signing node did not start: {st}")
        ad = w.cmd(P + "advertise", nickname=w.name, tx_types="spend", fee=100)
        say(f"{w.name:<7} key {ad['pubkey']}  sessions {ad['endpoint']}  DHT udp {st['dht'][1]}  "
            f"advertised (types {','.join(ad['tx_types'])}, fee {ad['fee_per_signature_sat']} sat)")
    keys = {w.name: w.cmd(P + "participant_key")["pubkey"] for w in wallets}
    wanted = {keys[w.name] for w in others}

    def found_all():
        got = initiator.cmd(P + "find_signers", amount=COIN_SATS)
        return got if wanted <= {s["pubkey"] for s in got} else None

    found = wait_for(found_all, f"{initiator.name} to find {len(others)} signers in the DHT", timeout, alive)
    chosen = [s for s in found if s["pubkey"] in wanted]
    for s in chosen:
        say(f"{initiator.name} found {s['nickname']:<7} {s['pubkey']} at {s['endpoint']} "
            f"(signature checked; observed sessions {s['observed']})")
    strangers = [s for s in found if s["pubkey"] not in wanted]
    if strangers:
        say(f"(ignored {len(strangers)} other advertisement(s))")
    ph.end("discovery")
    return chosen


def independent_output_key(pubkeys_hex: list[str]) -> str:
    """The taproot output key of tr(musig(keys)) computed here, not by the plugin: sorted keys
    (BIP-327 KeySort), aggregated, BIP-341 tweak without a script tree; x-only hex."""
    from musig2_plugin.crypto import KeyAggContext, key_sort
    keys = key_sort([bytes.fromhex(k) for k in pubkeys_hex])
    return KeyAggContext.from_pubkeys(keys).with_taproot_tweak(None).xonly().hex()


def phase_output(ph: Phases, chain, wallets, chosen) -> dict[str, Any]:
    ph.start("output: alice builds the MuSig2 output tr(musig(...)) from the chosen keys")
    initiator, others = wallets[0], wallets[1:]
    made = initiator.cmd(P + "create_output", keys=",".join(s["pubkey"] for s in chosen), label="demo")
    say(f"descriptor {made['descriptor']}")
    say(f"address    {made['address']}")
    for w in others:
        theirs = w.cmd(P + "create_output", descriptor=made["descriptor"])
        if theirs["address"] != made["address"]:
            raise DemoFailure(f"{w.name} derives {theirs['address']} from the same descriptor")
    say(f"{', '.join(w.name for w in others)} imported the descriptor: same address")
    keys = [initiator.cmd(P + "participant_key")["pubkey"]] + [s["pubkey"] for s in chosen]
    q = independent_output_key(keys)
    spk = chain.node.call("validateaddress", made["address"])["scriptPubKey"]
    if spk != "5120" + q:
        raise DemoFailure(f"the node decodes {made['address']} to script {spk}, "
                          f"but the keys give output key {q}")
    say(f"node's validateaddress: witness v1 program = output key {short(q, 24)} computed here "
        f"from the {len(keys)} keys")
    made["output_key"] = q
    ph.end("output")
    return made


def phase_funding(ph: Phases, chain, wallets, out, inputs: int, timeout: float) -> int:
    from tests.harness.wallets import wait_for_height
    ph.start(f"funding: alice pays the output with {inputs} ordinary Electrum send(s)")
    alive = all_alive(chain, wallets)
    alice = wallets[0]
    chain.fund(alice.new_address(), "1.0")
    chain.mine(1)
    wait_for_height(wallets, chain.node.height(), timeout=timeout)
    wait_for(lambda: alice.balance()["confirmed"] == Decimal("1.0"), "alice's 1 BTC from the miner",
             timeout, alive)
    say("alice's wallet received 1 BTC from the node's miner wallet (1 block)")
    for k in range(inputs):
        raw = alice.cmd("payto", destination=out["address"], amount=str(Decimal(COIN_SATS) / 10**8),
                        feerate=FEERATE, addtransaction=True)
        t = time.monotonic()
        txid = alice.call("broadcast", tx=raw)
        say(f"alice: payto {Decimal(COIN_SATS) / 10**8} BTC -> MuSig2 output, broadcast {txid} "
            f"({time.monotonic() - t:.2f} s)")
    chain.mine(1)
    wait_for_height(wallets, chain.node.height(), timeout=timeout)
    total = COIN_SATS * inputs

    def funded():
        for o in alice.cmd(P + "list_outputs"):
            if (o["address"] == out["address"] and o["balance"]["confirmed"] == total
                    and len(o["coins"]) == inputs):
                return o
        return None

    o = wait_for(funded, "the MuSig2 output's coins to confirm", timeout, alive)
    for c in o["coins"]:
        say(f"coin {c['outpoint']} {c['value_sats']} sat at height {c['height']}")
    ph.end("funding")
    return total


def phase_request(ph: Phases, chain, wallets, total: int, timeout: float) -> dict[str, Any]:
    ph.start("request: alice asks for a spend; the others find it, review it and approve")
    alive = all_alive(chain, wallets)
    alice, others = wallets[0], wallets[1:]
    payee = wallets[-1]
    dest = payee.new_address()
    pay = total - SPEND_MARGIN_SATS
    req = alice.cmd(P + "request_spend", outputs=json.dumps([[dest, pay]]), feerate=FEERATE)
    rid = req["request_id"]
    if not rid:
        raise DemoFailure("alice's request was not announced (is her node running?)")
    say(f"alice: request {short(rid)} to pay {pay} sat to {payee.name} from "
        f"{len(req['sighashes'])} MuSig2 input(s), txid {req['txid']}")
    for w in others:
        found = wait_for(lambda: [r for r in w.cmd(P + "list_requests") if r["request_id"] == rid],
                         f"{w.name} to find the request", timeout, alive)[0]
        if found["status"] != "pending":
            raise DemoFailure(f"{w.name} refused the request: {found['error']}")
        review = found["review"]
        if review["txid"] != req["txid"] or review["fee_sats"] != req["review"]["fee_sats"]:
            raise DemoFailure(f"{w.name}'s review differs from alice's: {review}")
        lines = ", ".join(f"{o['value_sats']} sat -> {owner_of(wallets, o['address'])}"
                          for o in review["outputs"])
        say(f"{w.name:<7} found it; reviews (from the transaction itself): {lines}; "
            f"fee {review['fee_sats']} sat; signs input(s) {sorted(int(i) for i in review['sign_inputs'])}")
        st = w.cmd(P + "approve", request_id=rid)
        say(f"{w.name:<7} approves and joins: {st['status']}")
    req["dest"], req["pay"], req["payee"] = dest, pay, payee
    ph.end("request")
    return req


def phase_signing(ph: Phases, chain, wallets, req, timeout: float) -> dict[str, Any]:
    ph.start("signing: MuSig2 round 1 (nonces) and round 2 (partial signatures), broadcast")
    alive = all_alive(chain, wallets)
    alice, rid = wallets[0], req["request_id"]

    def settled():
        s = alice.cmd(P + "session_status", request_id=rid)
        return s if s["status"] in ("signed", "broadcast", "failed") else None

    done = wait_for(settled, "the signing sessions to finish", timeout, alive, every=0.05)
    if done["status"] == "failed":
        raise DemoFailure(f"signing failed: {done['error']}")
    # Alice's wallet broadcasts a finalized request by itself; this asks for it explicitly, and
    # returns the txid it already sent otherwise.
    txid = alice.cmd(P + "broadcast_request", request_id=rid)["txid"]
    if txid != req["txid"]:
        raise DemoFailure(f"broadcast txid {txid} is not the requested {req['txid']}")
    done = alice.cmd(P + "session_status", request_id=rid)
    if done["status"] != "broadcast" or done.get("broadcasts") != 1:
        # the explicit request must join the wallet's own send, not send a second time
        raise DemoFailure(f"alice's request is {done['status']} after "
                          f"{done.get('broadcasts')} broadcast(s), expected one")
    say(f"alice: {len(done['session_ids'])} session(s), signed inputs {done['signed_inputs']}, "
        f"status {done['status']} (sent to the server once)")
    say("session marks, s after alice's request: "
        + ", ".join(f"{k} {v:.3f}" for k, v in done["phases"].items()))
    for w in wallets[1:]:
        def signed_here(w=w):
            s = w.cmd(P + "session_status", request_id=rid)
            if s["status"] == "failed":
                raise DemoFailure(f"{w.name}'s session failed: {s['error']}")
            return s if s["status"] in ("signed", "broadcast") else None
        theirs = wait_for(signed_here, f"{w.name} to hold the final signature(s)", timeout, alive)
        if theirs["signed_inputs"] != done["signed_inputs"] or theirs["txid"] != txid:
            raise DemoFailure(f"{w.name} signed inputs {theirs['signed_inputs']} of {theirs['txid']}")
        say(f"{w.name:<7} holds the same fully signed transaction ({theirs['status']})")
    if not chain.node.in_mempool(txid):
        raise DemoFailure(f"{txid} is not in the node's mempool after alice's broadcast")
    say(f"alice's wallet broadcast {txid}; it is in the node's mempool")
    ph.end("signing")
    return done


def phase_confirmed(ph: Phases, chain, wallets, out, req, timeout: float) -> dict[str, Any]:
    from musig2_plugin.crypto import schnorr_verify
    from tests.harness.wallets import wait_for_height, wait_for_tx
    ph.start("confirmed: a block is mined; node RPC and wallets show the spend")
    alive = all_alive(chain, wallets)
    txid = req["txid"]
    block_hash = chain.mine(1)[0]
    info = chain.getrawtransaction(txid)
    block = chain.node.call("getblock", block_hash)
    if info.get("blockhash") != block_hash or txid not in block["tx"] or info.get("confirmations", 0) < 1:
        raise DemoFailure(f"{txid} is not confirmed in block {block_hash}")
    say(f"node: {txid} in block {block['height']} {block_hash}, {info['confirmations']} confirmation(s)")
    q = bytes.fromhex(out["output_key"])
    for i, vin in enumerate(info["vin"]):
        witness = vin.get("txinwitness", [])
        if len(witness) != 1 or len(witness[0]) != 128:
            raise DemoFailure(f"input {i}: witness is not one 64-byte key-path signature: {witness}")
        sig = bytes.fromhex(witness[0])
        msg = bytes.fromhex(req["sighashes"][str(i)])
        if not schnorr_verify(q, msg, sig):
            raise DemoFailure(f"input {i}: the signature does not verify under the output key")
        say(f"input {i}: signature {short(witness[0], 32)} verifies (BIP-340) under the output key "
            "for this input's sighash")
    wait_for_height(wallets, chain.node.height(), timeout=timeout)
    wait_for_tx([wallets[0], req["payee"]], txid, confirmations=1, timeout=timeout)
    payee = req["payee"]
    got = wait_for(lambda: (b := payee.balance())["confirmed"] == Decimal(req["pay"]) / 10**8 and b,
                   f"{payee.name} to show the payment confirmed", timeout, alive)
    say(f"{payee.name}'s wallet: {got['confirmed']} BTC confirmed")
    empty = wait_for(lambda: [o for o in wallets[0].cmd(P + "list_outputs")
                              if o["address"] == out["address"] and o["balance"]["confirmed"] == 0
                              and not o["coins"]], "the MuSig2 output to show as spent", timeout, alive)
    say(f"alice's MuSig2 output: balance {empty[0]['balance']['confirmed']} sat, no coins left")
    ph.end("confirmed")
    return {"txid": txid, "block_hash": block_hash, "block_height": block["height"]}


# --------------------------------------------------------------------------- main
def run(args, ph: Phases, parts: dict[str, Any]) -> dict[str, Any]:
    if args.recovery:
        from examples.recovery_demo import run_recovery
        return run_recovery(args, ph, parts, sys.modules[__name__])
    n = args.wallets
    chain = phase_chain(ph, parts)
    wallets = phase_wallets(ph, chain, n, args.bundle)
    parts["wallets"] = wallets
    chosen = phase_discovery(ph, chain, wallets, args.timeout)
    out = phase_output(ph, chain, wallets, chosen)
    total = phase_funding(ph, chain, wallets, out, args.inputs, args.timeout)
    req = phase_request(ph, chain, wallets, total, args.timeout)
    phase_signing(ph, chain, wallets, req, args.timeout)
    conf = phase_confirmed(ph, chain, wallets, out, req, args.timeout)
    return {"ok": True, "wallets": n, "inputs": args.inputs, "descriptor": out["descriptor"],
            "address": out["address"], **conf,
            "timings_s": dict(ph.done), "total_s": ph.elapsed()}


def stop_everything(parts: dict[str, Any]) -> None:
    """Stop what we started, owners first (clean daemon stops), then anything the process
    registry still knows (by pid), and remove the throwaway directories."""
    from tests.harness import procs
    from tests.harness.wallets import stop_wallets
    try:
        if parts.get("wallets"):
            stop_wallets(parts["wallets"])
    finally:
        try:
            if parts.get("chain") is not None:
                parts["chain"].stop()
        finally:
            procs.stop_all()


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    limit = max_wallets()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wallets", "-n", type=int, default=3,
                    help=f"Electrum wallets taking part, 2..{limit} (default 3)")
    ap.add_argument("--inputs", type=int, default=1,
                    help="MuSig2 coins funded and spent in one transaction, 1..5 (default 1)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds allowed for each wait (default 120)")
    ap.add_argument("--recovery", action="store_true",
                    help="the recovery scenario instead (examples/recovery_demo.py): one "
                         "co-signer goes silent, the funder recovers after the timelock")
    ap.add_argument("--blocks", type=int, default=10,
                    help="the recovery leaf's timelock in blocks, 2..100 (default 10)")
    ap.add_argument("--bundle", type=int, default=0,
                    help="run the first K wallets in .venv-bundle, Electrum's own dependencies "
                         "only, as in its binary bundles (default 0)")
    args = ap.parse_args(argv)
    if not 2 <= args.blocks <= 100:
        ap.error("--blocks must be within 2..100")
    if not 0 <= args.bundle <= args.wallets:
        ap.error("--bundle must be within 0..--wallets")
    if not 2 <= args.wallets <= limit:
        ap.error(f"--wallets must be within 2..{limit}")
    if not 1 <= args.inputs <= 5:
        ap.error("--inputs must be within 1..5")
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)
    ph = Phases(total=7 if args.recovery else 8)
    names = ", ".join(NAMES[:args.wallets])
    if args.recovery:
        print(f"MuSig2 recovery demo: {args.wallets} Electrum 4.8 wallets ({names}); the last "
              f"goes silent and alice recovers after {args.blocks} blocks, on 127.0.0.1",
              flush=True)
    else:
        print(f"MuSig2 wallet demo: {args.wallets} Electrum 4.8 wallets ({names}) co-sign a "
              f"spend of {args.inputs} MuSig2 coin(s) on a regtest chain, all on 127.0.0.1",
              flush=True)
    parts: dict[str, Any] = {}
    status = 1
    try:
        result = run(args, ph, parts)
        ph.summary()
        print(RESULT + json.dumps(result), flush=True)
        if args.recovery:
            print(f"\nOK: the recovery {result['txid']} is confirmed in block "
                  f"{result['block_hash']}", flush=True)
        else:
            print(f"\nOK: the {args.wallets}-of-{args.wallets} MuSig2 spend {result['txid']} is "
                  f"confirmed in block {result['block_height']}", flush=True)
        status = 0
    except (KeyboardInterrupt, Interrupted):
        print("\nINTERRUPTED: stopping everything", file=sys.stderr, flush=True)
        status = 130
    except DemoFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr, flush=True)
    except Exception as exc:
        from tests.harness.chain import ChainSetupError, RPCError
        from tests.harness.electrum import HarnessError
        from tests.harness.wallets import ElectrumRPCError
        if isinstance(exc, (ChainSetupError, HarnessError, ElectrumRPCError, RPCError, TimeoutError)):
            print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
            print(f"\nFAILED: unexpected {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop_everything(parts)
            print("stopped: every process this demo started, throwaway directories removed",
                  file=sys.stderr, flush=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    if status != 0 and ph.done:
        print("phases completed before the failure: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in ph.done), file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
