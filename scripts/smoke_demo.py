#!/usr/bin/env python3
"""Smoke flow of scripts/run-demo until examples/demo.py exists.

Builds the plugin zip, starts a real Electrum 4.8 daemon (regtest, offline, throwaway directory)
with the plugin installed, authorized and enabled the way Electrum does it, creates a wallet, and
prints the plugin's own answer to ``musig2_plugin_status`` before and after. Exit status 0 only if
the plugin answered correctly.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.electrum import ElectrumDaemon, HarnessError, build_plugin_zip  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="musig2-demo-") as tmp:
        work = Path(tmp)
        zip_path = build_plugin_zip(work / "dist")
        print(f"plugin zip: {zip_path.name}")
        try:
            with ElectrumDaemon(work / "alice", plugin_zip=zip_path, name="alice") as alice:
                alice.start()
                print("Electrum daemon (regtest, offline) started with the plugin enabled")
                before = alice.cli("musig2_plugin_status")
                print("musig2_plugin_status:", json.dumps(before, sort_keys=True))
                alice.create_wallet("alice_wallet")
                after = alice.cli("musig2_plugin_status")
                print("after creating a wallet:", json.dumps(after, sort_keys=True))
        except HarnessError as e:
            print(f"run-demo: ERROR: {e}", file=sys.stderr)
            return 1
    ok = (before.get("plugin") == "musig2_plugin" and before.get("wallet") is None
          and after.get("wallet") == "alice_wallet")
    print("smoke flow: OK" if ok else "smoke flow: FAILED (unexpected answer)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
