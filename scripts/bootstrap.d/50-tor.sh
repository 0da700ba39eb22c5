#!/usr/bin/env bash
# Step 50: Debian's `tor` package (tor and tor-gencert) for the private Tor network of the tests
# (tests/harness/tornet.py, docs/tor.md), and nftables + iproute2 for the leak test's network
# namespace (tests/harness/leakns.py).
#
# Why a system package: tor is not on PyPI; Debian 12 ships 0.4.9.x with tor-gencert, which is
# all a private network needs. apt-get uses this machine's own apt configuration (its mirror), as
# the other steps do; the repository names no host.
# Installing must not start a tor that joins the real Tor network: Debian's package enables and
# starts tor.service, so a policy-rc.d that refuses service starts is in place during the install
# (unless one already exists), and afterwards the service is disabled when systemd is present.
# Idempotent: when both binaries run, nothing is done (no network).
set -euo pipefail
. "$MUSIG2_ROOT/scripts/bootstrap_lib.sh"

if command -v tor-gencert >/dev/null 2>&1 && tor --version >/dev/null 2>&1 \
        && command -v nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "tor is not installed and this is uid $(id -u): run 'apt-get install tor' as root (the private Tor network of the tests needs tor and tor-gencert)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the tests' Tor network needs Debian's tor package"

LOGDIR="$MUSIG2_ROOT/.cache/bootstrap"
mkdir -p "$LOGDIR"
POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    own_policy=1
fi
cleanup() { [ "$own_policy" = 1 ] && rm -f "$POLICY"; }
trap cleanup EXIT

say "installing Debian's tor (tor, tor-gencert), nftables and iproute2 for the private test network"
PKGS=(tor nftables iproute2)
if ! run_logged "$LOGDIR/apt-tor.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"; then
    run_logged "$LOGDIR/apt-update-tor.log" apt-get update -q || true
    run_logged "$LOGDIR/apt-tor.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}" \
        || die "apt-get could not install tor nftables iproute2 (log: $LOGDIR/apt-tor.log); install them by hand: apt-get install tor nftables iproute2"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now tor.service >/dev/null 2>&1 || true
fi
command -v tor-gencert >/dev/null 2>&1 || die "the tor package was installed but tor-gencert is missing"
tor --version >/dev/null 2>&1 || die "the tor package was installed but 'tor --version' fails"
command -v nft >/dev/null 2>&1 || die "the nftables package was installed but nft is missing"
