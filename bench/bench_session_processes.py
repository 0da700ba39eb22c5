#!/usr/bin/env python3
"""Announce -> final signature with every participant in its own OS process (the demo).

    python bench/bench_session_processes.py [--sizes 3,10] [--runs 3]

Runs examples/demo.py (real processes, DHT discovery, pushed request, automatic
approval) ``--runs`` times per size and reports the median of the time from the
initiator's announce to the moment the *last* process held the verified signature
(one clock for all processes). Complements bench_session.py (all nodes in one loop).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "demo.py")
LINE = re.compile(r"announce -> final signature: ([\d.]+) ms at the initiator, ([\d.]+) ms until")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3,10")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for n in (int(x) for x in args.sizes.split(",")):
        last, init = [], []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, DEMO, "--signers", str(n), "--timeout", "120"],
                                 capture_output=True, text=True, timeout=300)
            m = LINE.search(out.stdout)
            if out.returncode != 0 or m is None:
                raise SystemExit(f"demo failed for n={n}:\n{out.stdout}\n{out.stderr}")
            init.append(float(m.group(1)))
            last.append(float(m.group(2)))
        print(f"n={n:>3} processes: announce -> last final signature median "
              f"{statistics.median(last):.1f} ms (initiator {statistics.median(init):.1f} ms; "
              f"runs {sorted(last)})", flush=True)


if __name__ == "__main__":
    main()
