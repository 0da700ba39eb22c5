#!/usr/bin/env python3
"""Figures on the test internet (tests/harness/netns.py): discovery, 3-of-3 request -> final
signature direct vs. through a relay, and a relay's cost per session.

    .venv/bin/python bench/bench_nat.py [--runs 7]        (root: it builds namespaces)

Topology: relay1 on the public segment (DHT bootstrap + relay); homes behind routers with a
port forward ("direct" signers a1, b1, c1: each in its own forwarded home) and homes behind
masquerade / random-port routers (b2, c2: reached through relay1). One Musig2Node process per
machine (tests/harness/natnode.py). Signers join every request on receipt; the creator times
announce -> final signature inside its own process.

  direct   a1 (creator), b1, c1: every connection straight through the port forwards
  relay    a1 (creator), b2, c2: b2 and c2 only through relay1

Relay cost: relay1's counters (messages, bytes both ways) before and after each relayed
session, divided per session. Discovery: a1 looks up the signer topic until all four other
advertisements are found, and b2 (a DHT client behind masquerade, which holds no records of
others, so every lookup crosses its NAT) looks up the four others. Medians of --runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.harness.natnode import NatNode  # noqa: E402
from tests.harness.netns import Internet, NatKind  # noqa: E402

PORT = 7800


def settled(relay: NatNode) -> dict:
    """The relay's counters once a session's last messages (FINAL to everyone) have passed."""
    import time
    last = relay.call("relay_stats")
    while True:
        time.sleep(0.7)
        now = relay.call("relay_stats")
        if (now["messages"], now["bytes"]) == (last["messages"], last["bytes"]):
            return now
        last = now


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="musig2-bench-nat-"))
    with Internet() as net:
        r1h = net.add_public("relay1")
        relay = NatNode(r1h, work, port=PORT, relay=True, dht=True, name="relay")
        boot = (f"{r1h.ip}:{PORT}",)
        homes = {"a1": ("fa", NatKind.FORWARD), "b1": ("fb", NatKind.FORWARD),
                 "c1": ("fc", NatKind.FORWARD), "b2": ("mb", NatKind.MASQUERADE),
                 "c2": ("rc", NatKind.RANDOM)}
        nodes = {}
        for name, (home, kind) in homes.items():
            h = net.add_home(home, kind, hosts=[name],
                             forward_ports=[PORT] if kind is NatKind.FORWARD else ())
            nodes[name] = NatNode(h.hosts[0], work, port=PORT, dht=True, bootstrap=boot,
                                  dht_client=True, name="signer")
        paths = {name: n.call("reach", peers=[[r1h.ip, PORT]])["path"] for name, n in nodes.items()}
        assert paths == {"a1": "direct", "b1": "direct", "c1": "direct", "b2": "relay",
                         "c2": "relay"}, paths
        for name, n in nodes.items():
            n.call("advertise", nickname=name)
            n.call("autojoin")
        a1 = nodes["a1"]
        others = {nodes[k].pubkey for k in ("b1", "c1", "b2", "c2")}
        discovery, discovery_client = [], []
        b2 = nodes["b2"]
        b2_others = {nodes[k].pubkey for k in ("a1", "b1", "c1", "c2")}
        for _ in range(args.runs):
            got = a1.call("find")
            assert others <= set(got["found"]), got
            discovery.append(got["seconds"])
            got = b2.call("find")          # a DHT client behind masquerade: remote lookups
            assert b2_others <= set(got["found"]), got
            discovery_client.append(got["seconds"])
        # everyone learns everyone's advertised endpoint (what discovery gives them)
        for x in nodes.values():
            for y in nodes.values():
                if x is not y:
                    x.call("add_peer", key=y.pubkey, endpoint=y.call("info")["advertised"])
        timings: dict[str, list[float]] = {"direct": [], "relay": []}
        cost: list[tuple[int, int]] = []
        for _ in range(args.runs):
            for case, group in (("direct", ("a1", "b1", "c1")), ("relay", ("a1", "b2", "c2"))):
                before = settled(relay)
                keys = [nodes[k].pubkey for k in group]
                timings[case].append(a1.call("sign_timed", keys=keys))
                after = settled(relay)
                if case == "relay":
                    cost.append((after["messages"] - before["messages"],
                                 after["bytes"] - before["bytes"]))
                else:
                    assert after["messages"] == before["messages"], "direct session used the relay"
        med = {k: statistics.median(v) for k, v in timings.items()}
        out = {
            "runs": args.runs,
            "discovery_s_median": round(statistics.median(discovery), 4),
            "discovery_from_nat_client_s_median": round(statistics.median(discovery_client), 4),
            "direct_s_median": round(med["direct"], 4),
            "relay_s_median": round(med["relay"], 4),
            "relay_over_direct": round(med["relay"] / med["direct"], 3),
            "relay_messages_per_session_median": statistics.median(c[0] for c in cost),
            "relay_bytes_per_session_median": statistics.median(c[1] for c in cost),
            "direct_s_all": [round(x, 4) for x in timings["direct"]],
            "relay_s_all": [round(x, 4) for x in timings["relay"]],
        }
        for n in [relay, *nodes.values()]:
            n.stop()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
