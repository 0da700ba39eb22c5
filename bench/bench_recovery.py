"""Benchmark: building, signing and finalizing recovery (script-path) spends, in process.

Run:  .venv/bin/python bench/bench_recovery.py [--repeats R]

For a funder leaf and a 2-of-3 leaf, with 1 and 50 coins (MAX_SPEND_INPUTS): build the PSBT
(every input's tree fields), each signer parses it, reviews it and adds its tapscript signatures
(BIP-342 sighash per input), finalize (every signature verified, witnesses written). Also the
PSBT size. Median wall and process CPU time of R runs. Figures go to docs/recovery.md; a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from electrum import constants  # noqa: E402

from musig2_plugin import crypto  # noqa: E402
from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, RecoveryPolicy,  # noqa: E402
                                         build_recovery_spend, finalize_recovery, parse_psbt,
                                         psbt_base64, review_recovery, sign_recovery)


def one(policy_kind: str, coins: int, secrets) -> tuple[float, int, float]:
    keys = [crypto.plain_pubkey(s) for s in secrets]
    ordered = crypto.key_sort(keys)
    policy = (RecoveryPolicy.funder_alone(keys[0], ordered, 144) if policy_kind == "funder"
              else RecoveryPolicy.k_of_n(2, ordered, 144))
    out = MusigOutput.from_pubkeys(keys, recovery=policy)
    signers = [secrets[0]] if policy_kind == "funder" else [secrets[0], secrets[1]]
    t, c = time.perf_counter(), time.process_time()
    cs = [MusigCoin(hashlib.sha256(b"bench %d" % i).hexdigest(), i, 100_000, out)
          for i in range(coins)]
    psbt = psbt_base64(build_recovery_spend(cs, out.address(), feerate_sat_vb=2))
    for s in signers:
        tx = parse_psbt(psbt)
        review_recovery(tx, crypto.plain_pubkey(s))
        sign_recovery(tx, s)
        psbt = psbt_base64(tx)
    final = finalize_recovery(parse_psbt(psbt))
    assert final.is_complete()
    return time.perf_counter() - t, len(psbt) * 3 // 4, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    constants.BitcoinRegtest.set_as_network()
    secrets = [hashlib.sha256(b"bench key %d" % i).digest() for i in range(3)]
    for kind in ("funder", "2-of-3"):
        for coins in (1, 50):
            runs = [one(kind, coins, secrets) for _ in range(args.repeats)]
            med = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            print(f"{kind:<7} {coins:>3} coin(s): median {med * 1000:8.1f} ms wall, "
                  f"{cpu * 1000:8.1f} ms CPU "
                  f"(build + {'1 signer' if kind == 'funder' else '2 signers'} + finalize), "
                  f"PSBT {runs[0][1]:,} bytes")


if __name__ == "__main__":
    main()
