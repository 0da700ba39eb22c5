#!/usr/bin/env bash
# Step 60: the tools of the test internet (tests/harness/netns.py): iproute2's `ip` and nftables'
# `nft`, for network namespaces, veth pairs and NAT routers.
#
# Why a warning and not a failure when they cannot be installed: every other test runs without
# them. The test-network tests themselves then fail with the harness's one line (never skip), so a
# CI machine without them still goes red where it matters.
set -euo pipefail
. "$MUSIG2_ROOT/scripts/bootstrap_lib.sh"

command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1 && exit 0

if [ "$(id -u)" -ne 0 ]; then
    say "WARNING: 'ip' or 'nft' missing and this is not root: the test-network tests (tests/netns) will fail; install iproute2 and nftables"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || { say "WARNING: no apt-get to install iproute2/nftables: the test-network tests will fail"; exit 0; }
say "installing iproute2 and nftables for the test network"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 nftables >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 nftables >/dev/null 2>&1 \
        || { say "WARNING: apt-get could not install iproute2/nftables: the test-network tests will fail"; exit 0; }
fi
command -v nft >/dev/null 2>&1 || say "WARNING: nft still missing after installing nftables"
exit 0
