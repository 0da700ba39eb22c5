#!/usr/bin/env python3
"""The wallet demo across a small internet: Electrum wallets in homes behind three kinds of NAT.

    scripts/run-demo --nat [--wallets 3|4] [--timeout S]        (sets itself up first; root)
    .venv/bin/python examples/nat_wallet_demo.py [same options]

The same wallet flow as examples/wallet_demo.py (advertise, discover, create the output, fund,
request, approve, both MuSig2 rounds, broadcast, confirmed in a block per the node's RPC), but
every machine is a Linux network namespace (tests/harness/netns.py):

  public 203.0.113.0/24   chain (bitcoind + ElectrumX), relay1 and relay2 (Musig2 nodes: DHT
                          bootstrap and relay, tests/harness/natnode.py)
  home "fwd"              alice, behind a router with a port forward (reachable)
  home "masq"             bob (and dave with --wallets 4: two wallets behind one NAT), plain
                          masquerade (unreachable)
  home "rnd"              carol, masquerade with random port mapping (symmetric-style)

Each wallet's node listens on 0.0.0.0:7800 and joins the DHT through relay1; node start then
finds out by itself, in the background, how peers reach it (no ``musig2_plugin_reach`` call):
peers dial it back; only alice's port forward passes, the others keep a reservation at a relay
and advertise "reachable through relay R" (the advertise waits for that step). The demo
prints which wallet is behind which NAT, the path (direct / relay) each one is reached by, and
what the relays carried.
Exit status and clean-up as in wallet_demo.py; every namespace is deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "examples")):
    if p not in sys.path:
        sys.path.insert(0, p)

import wallet_demo as wd  # noqa: E402  (the shared phases and printing)
from wallet_demo import P, DemoFailure, Interrupted, Phases, say, short, wait_for  # noqa: E402

PORT = 7800
RESULT = "RESULT "
#: name -> (home, NAT kind name); dave shares bob's home and NAT.
LAYOUT = {"alice": ("fwd", "FORWARD"), "bob": ("masq", "MASQUERADE"),
          "carol": ("rnd", "RANDOM"), "dave": ("masq", "MASQUERADE")}


def phase_network(ph: Phases, parts: dict[str, Any], n: int):
    from tests.harness.netns import Internet, NatKind
    ph.start("network: a small internet of namespaces, homes behind NAT routers (nft)")
    net = parts["net"] = Internet()
    hosts = {name: net.add_public(name) for name in ("chain", "relay1", "relay2")}
    names = list(LAYOUT)[:n]
    homes: dict[str, list[str]] = {}
    for name in names:
        homes.setdefault(LAYOUT[name][0], []).append(name)
    for home, members in homes.items():
        kind = NatKind[LAYOUT[members[0]][1]]
        h = net.add_home(home, kind, hosts=members,
                         forward_ports=[PORT] if kind is NatKind.FORWARD else ())
        hosts.update({m.name: m for m in h.hosts})
    for line in net.describe().splitlines():
        say(line.strip())
    ph.end("network")
    return net, hosts, names


def phase_chain(ph: Phases, parts: dict[str, Any], host):
    from tests.harness.chain import RegtestChain
    ph.start(f"chain: regtest bitcoind + ElectrumX on the public machine {host.ip}")
    chain = parts["chain"] = RegtestChain(public_host=host.ip)
    chain.start()
    say(f"bitcoind height {chain.node.height()}; ElectrumX {chain.electrum_server}")
    ph.end("chain")
    return chain


def phase_relays(ph: Phases, parts: dict[str, Any], hosts, workdir: str):
    from tests.harness.natnode import NatNode
    ph.start("relays: two public Musig2 nodes (DHT bootstrap + relay)")
    r1 = NatNode(hosts["relay1"], _p(workdir), port=PORT, relay=True, dht=True, name="relay")
    parts["relays"] = [r1]
    r2 = NatNode(hosts["relay2"], _p(workdir), port=PORT, relay=True, dht=True, name="relay",
                 bootstrap=(f"{hosts['relay1'].ip}:{PORT}",))
    parts["relays"].append(r2)
    for r in (r1, r2):
        say(f"{r.host.name} {r.host.ip}:{PORT} key {short(r.pubkey)} relays for unreachable nodes")
    ph.end("relays")
    return r1, r2


def _p(d: str):
    from pathlib import Path
    return Path(d)


def phase_wallets(ph: Phases, parts: dict[str, Any], chain, hosts, names, workdir: str):
    from tests.harness.electrum import build_plugin_zip, require_electrum
    from tests.harness.wallets import ChainWallet
    ph.start(f"wallets: {len(names)} Electrum daemons, each in its home, server {chain.electrum_server}")
    require_electrum()
    import electrum.plugin  # noqa: F401  (first import on the main thread, see start_wallets)
    zip_path = build_plugin_zip(workdir)
    wallets = [ChainWallet(chain, n, plugin_zip=zip_path, netns=hosts[n].ns) for n in names]
    parts["wallets"] = wallets
    with ThreadPoolExecutor(max_workers=len(wallets)) as pool:
        errors = [f.exception() for f in [pool.submit(w.start) for w in wallets]]
    if any(errors):
        raise next(e for e in errors if e is not None)
    for w in wallets:
        w.call("setconfig", key="plugins.musig2_plugin.listen_host", value="0.0.0.0")
        w.call("setconfig", key="plugins.musig2_plugin.listen_port", value=PORT)
        h = hosts[w.name]
        say(f"{w.name:<6} {h.ip} behind {h.home.name} ({h.home.kind.value}, public "
            f"{h.home.public_ip}); Electrum pid {w.daemon.proc.pid}")
    ph.end("wallets")
    return wallets


def phase_discovery(ph: Phases, chain, wallets, hosts, relay1, timeout: float):
    ph.start("discovery: nodes join the DHT, learn how they are reached, advertise; alice looks")
    alive = wd.all_alive(chain, wallets)
    reach: dict[str, dict] = {}
    seed = f"{relay1.host.ip}:{PORT}"
    pending_at_start: dict[str, bool] = {}
    for w in wallets:
        st = w.cmd(P + "node_start", bootstrap=seed)
        if not st.get("running"):
            raise DemoFailure(f"{w.name}: node did not start: {st}")
        pending_at_start[w.name] = bool(st.get("reach_pending"))
    for w in wallets:
        # No reach command: the advertise waits for node start's own reach step.
        w.cmd(P + "advertise", nickname=w.name, tx_types="spend", fee=100, timeout=120)
        st = w.cmd(P + "status")["node"]
        if st.get("reach_pending") or st.get("reach_error"):
            raise DemoFailure(f"{w.name}: reach step not settled after advertise: {st}")
        r = reach[w.name] = st["reach"]
        r["pending_at_start"] = pending_at_start[w.name]
        h = hosts[w.name]
        via = (f"relay {short(r['relays'][0][3])}@{r['relays'][0][0]}:{r['relays'][0][1]}"
               if r["path"] == "relay" else f"{r['advertised'][0]}:{r['advertised'][1]}")
        say(f"{w.name:<6} behind {h.home.kind.value:<12} seen from {r['public_ip']}: "
            f"{r['path'].upper()} via {via}")
    expected = {"alice": "direct", "bob": "relay", "carol": "relay", "dave": "relay"}
    for w in wallets:
        if reach[w.name]["path"] != expected[w.name]:
            raise DemoFailure(f"{w.name} is reached by {reach[w.name]['path']}, "
                              f"expected {expected[w.name]}")
    initiator, others = wallets[0], wallets[1:]
    wanted = {w.cmd(P + "participant_key")["pubkey"] for w in others}

    def found_all():
        got = initiator.cmd(P + "find_signers", amount=wd.COIN_SATS)
        return got if wanted <= {s["pubkey"] for s in got} else None

    found = wait_for(found_all, f"alice to find {len(others)} signers", timeout, alive, every=1.0)
    chosen = [s for s in found if s["pubkey"] in wanted]
    for s in chosen:
        say(f"alice found {s['nickname']:<6} {short(s['pubkey'])} path {s['path'].upper():<6} "
            f"at {s['endpoint']}")
    ph.end("discovery")
    return chosen, reach


def run(args, ph: Phases, parts: dict[str, Any]) -> dict[str, Any]:
    from tests.harness import netns, procs
    workdir = tempfile.mkdtemp(prefix="musig2-nat-demo-")
    procs.track_dir(workdir)
    net, hosts, names = phase_network(ph, parts, args.wallets)
    with netns.inside(hosts["chain"].ns):     # the chain's RPC is reached from its machine
        chain = phase_chain(ph, parts, hosts["chain"])
        r1, r2 = phase_relays(ph, parts, hosts, workdir)
        wallets = phase_wallets(ph, parts, chain, hosts, names, workdir)
        chosen, reach = phase_discovery(ph, chain, wallets, hosts, r1, args.timeout)
        out = wd.phase_output(ph, chain, wallets, chosen)
        total = wd.phase_funding(ph, chain, wallets, out, 1, args.timeout)
        req = wd.phase_request(ph, chain, wallets, total, args.timeout)
        wd.phase_signing(ph, chain, wallets, req, args.timeout)
        conf = wd.phase_confirmed(ph, chain, wallets, out, req, args.timeout)
        relayed = {r.host.name: r.call("relay_stats") for r in (r1, r2)}
    keys = {w.name: w.cmd(P + "participant_key")["pubkey"] for w in wallets}
    print("\nWho is where, and how peers reached them:", flush=True)
    paths = {}
    for w in wallets:
        h, r = hosts[w.name], reach[w.name]
        carried = {name: st["per_client"].get(keys[w.name]) for name, st in relayed.items()}
        used = {k: v for k, v in carried.items() if v}
        paths[w.name] = {"nat": h.home.kind.value, "public_ip": r["public_ip"], "path": r["path"],
                         "relayed": used, "reach_pending_at_start": r["pending_at_start"]}
        detail = ", ".join(f"{k}: {v[0]} messages, {v[1]} bytes" for k, v in used.items())
        say(f"{w.name:<6} {h.home.kind.value:<12} -> {r['path'].upper():<6}"
            + (f" ({detail})" if detail else ""))
    for name, st in relayed.items():
        say(f"{name}: carried {st['messages']} messages, {st['bytes']} bytes in all; "
            f"refusals {st['refusals'] or 'none'}")
    return {"ok": True, "wallets": len(wallets), "paths": paths, **conf,
            "relays": {k: {"messages": v["messages"], "bytes": v["bytes"]} for k, v in relayed.items()},
            "timings_s": dict(ph.done), "total_s": ph.elapsed()}


def stop_everything(parts: dict[str, Any]) -> None:
    from tests.harness import procs
    from tests.harness.wallets import stop_wallets
    try:
        if parts.get("wallets"):
            stop_wallets(parts["wallets"])
        for r in parts.get("relays", []):
            r.stop()
        if parts.get("chain") is not None:
            parts["chain"].stop()
    finally:
        try:
            procs.stop_all()
        finally:
            if parts.get("net") is not None:
                parts["net"].close()


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wallets", "-n", type=int, default=3,
                    help="3 (one per NAT kind) or 4 (dave shares bob's NAT); default 3")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per wait")
    args = ap.parse_args(argv)
    if args.wallets not in (3, 4):
        ap.error("--wallets must be 3 or 4")
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)
    ph = Phases(total=10)
    print(f"MuSig2 wallet demo across NATs: {args.wallets} Electrum 4.8 wallets in homes behind "
          "port-forward, masquerade and random-port NAT routers, on a test internet of network "
          "namespaces", flush=True)
    parts: dict[str, Any] = {}
    status = 1
    try:
        result = run(args, ph, parts)
        ph.summary()
        print(RESULT + json.dumps(result), flush=True)
        print(f"\nOK: the {args.wallets}-of-{args.wallets} MuSig2 spend {result['txid']} is "
              f"confirmed in block {result['block_height']}", flush=True)
        status = 0
    except (KeyboardInterrupt, Interrupted):
        print("\nINTERRUPTED: stopping everything", file=sys.stderr, flush=True)
        status = 130
    except DemoFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr, flush=True)
    except Exception as exc:
        traceback.print_exc()
        print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop_everything(parts)
            print("stopped: every process this demo started, namespaces and directories removed",
                  file=sys.stderr, flush=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    return status


if __name__ == "__main__":
    sys.exit(main())
