#!/usr/bin/env python3
"""Benchmarks of the Electrum edge (wallet bridge): output creation, spend building with
Electrum's sighash, co-signer review, PSBT size and round trip, and the complete PSBT-file
signing flow (3 signers) for 1, 10 and 50 MuSig2 inputs. Figures go to docs/electrum-edge.md.

    .venv/bin/python bench/bench_edge.py
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from coincurve import PrivateKey  # noqa: E402

from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, PsbtSigner, aggregate_all,  # noqa: E402
                                         build_spend, finalize, parse_psbt, psbt_base64,
                                         review_spend, sighashes)



def timed(fn, repeat=5):
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000, result


def main() -> None:
    secrets = [os.urandom(32) for _ in range(15)]
    pubs = [PrivateKey(s).public_key.format() for s in secrets]
    res = {}
    for n in (2, 3, 15):
        ms, _ = timed(lambda: MusigOutput.from_pubkeys(pubs[:n]), 20)
        res[f"output_from_{n}_keys_ms"] = round(ms, 2)
    out = MusigOutput.from_pubkeys(pubs[:3])
    dest = MusigOutput.from_pubkeys(pubs[3:5]).address()     # any valid address will do
    for k in (1, 10, 50):
        coins = [MusigCoin(hashlib.sha256(b"%d" % i).hexdigest(), 0, 100_000, out) for i in range(k)]
        ms, tx = timed(lambda: build_spend(coins, [(dest, 100_000 * k - 5_000)], fee_sats=5_000))
        res[f"build_{k}_inputs_ms"] = round(ms, 2)
        ms, msgs = timed(lambda: sighashes(tx))
        res[f"sighashes_{k}_inputs_ms"] = round(ms, 2)
        ms, _ = timed(lambda: review_spend(tx, pubs[1], msgs))
        res[f"review_{k}_inputs_ms"] = round(ms, 2)

        def flow():
            signers = [PsbtSigner(pubs[i], lambda i=i: secrets[i]) for i in range(3)]
            psbt = psbt_base64(tx)
            for s in signers:
                t = parse_psbt(psbt); s.round1(t); psbt = psbt_base64(t)
            for s in signers:
                t = parse_psbt(psbt); s.round2(t); psbt = psbt_base64(t)
            t = parse_psbt(psbt)
            aggregate_all(t)
            return psbt, finalize(t)
        ms, (psbt_full, final) = timed(flow, 3 if k < 50 else 1)
        res[f"psbt_flow_3_signers_{k}_inputs_ms"] = round(ms, 1)
        res[f"psbt_with_all_fields_{k}_inputs_bytes"] = len(psbt_full) * 3 // 4
        ms, _ = timed(lambda: parse_psbt(psbt_full))
        res[f"parse_full_psbt_{k}_inputs_ms"] = round(ms, 2)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
