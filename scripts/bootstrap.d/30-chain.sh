#!/usr/bin/env bash
# Prepare the regtest node used by the chain-backed tests (tests/chain, tests/harness/chain.py).
#
# Why this shape: no Bitcoin node is on PyPI and Debian 12 has none, but Debian 13 ships Bitcoin
# Knots (Bitcoin Core's consensus code) in trixie-backports.  Its binaries need Debian 13's C
# library, so we debootstrap a minimal Debian 13 folder, install Knots inside it, and run the
# binary on the host through that folder's own dynamic loader (no chroot at run time).
#
# Idempotent: a stamp file records a finished set-up; a rerun is a no-op.
# Atomic: everything is built in a temporary folder that is renamed into place only at the end.
# $BITCOIND (a Bitcoin Core/Knots bitcoind, v26 or newer) skips all of this.
# The Debian mirror is read from this machine's apt configuration, never from the repository.
#
# Runs standalone (`bash scripts/bootstrap.d/30-chain.sh`) or from scripts/bootstrap.sh.
# Environment: MUSIG2_CACHE (default: <repo>/.cache) selects the cache folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${MUSIG2_CACHE:-$repo/.cache}"
dest="$cache/knots-trixie"
stamp="$dest/.musig2-stamp"
errfile="$cache/knots-trixie.error"

fail() {
    # One line, always the same shape, so the test harness can repeat it verbatim.
    local line="chain set-up: cannot prepare bitcoind ($1); set \$BITCOIND to a bitcoind v26+ binary or fix the cause and rerun scripts/bootstrap.d/30-chain.sh"
    mkdir -p "$cache" 2>/dev/null && printf '%s\n' "$line" >"$errfile" 2>/dev/null || true
    printf '%s\n' "$line" >&2
    exit 1
}

bitcoind_major() {
    # Prints the major version of a "bitcoind -version" banner such as "... version v29.5.0 ...".
    sed -n '1s/.* v\([0-9][0-9]*\)\..*/\1/p'
}

if [[ -n "${BITCOIND:-}" ]]; then
    [[ -x "$BITCOIND" ]] || fail "\$BITCOIND=$BITCOIND is not an executable file"
    major="$("$BITCOIND" -version 2>/dev/null | bitcoind_major || true)"
    [[ -n "$major" && "$major" -ge 26 ]] || fail "\$BITCOIND=$BITCOIND is not bitcoind v26 or newer"
    echo "chain set-up: using \$BITCOIND=$BITCOIND (v$major)"
    exit 0
fi

run_knots() {
    "$1/usr/lib64/ld-linux-x86-64.so.2" --library-path "$1/usr/lib/x86_64-linux-gnu" "$1/usr/bin/bitcoind" "${@:2}"
}

if [[ -f "$stamp" ]] && run_knots "$dest" -version >/dev/null 2>&1; then
    echo "chain set-up: $(cat "$stamp") already prepared in $dest"
    rm -f "$errfile"
    exit 0
fi

[[ "$(id -u)" -eq 0 ]] || fail "debootstrap needs root and this is uid $(id -u)"

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "chain set-up: installing debootstrap"
    apt-get install -y -q debootstrap >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q debootstrap >/dev/null 2>&1; } \
        || fail "debootstrap is missing and apt-get could not install it"
fi

# The Debian archive URI comes from this machine's apt configuration (shared helper, which reads
# deb822 *.sources and one-line sources.list alike and skips the security archive).
# shellcheck source=../bootstrap_lib.sh
source "$repo/scripts/bootstrap_lib.sh"
mirror="$(debian_mirror || true)"
[[ -n "$mirror" ]] || fail "no Debian archive URI found in the apt configuration under /etc/apt"

mkdir -p "$cache"
# One set-up at a time per cache folder; a second caller waits, then finds the stamp.
exec 9>"$cache/knots-trixie.lock"
flock 9
if [[ -f "$stamp" ]] && run_knots "$dest" -version >/dev/null 2>&1; then
    echo "chain set-up: $(cat "$stamp") already prepared in $dest"
    exit 0
fi

# A folder debootstrap worked in may still have /proc or /sys mounted inside: unmount before
# removing (and never cross into another file system when removing).
remove_tree() {
    local mnt
    for mnt in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$1/" | sort -r); do
        umount -l "$mnt" 2>/dev/null || true
    done
    rm -rf --one-file-system "$1"
}
# Leftovers of a set-up that was killed (under the lock, so none of them is in use).
for stale in "$cache"/knots-trixie.tmp.*; do
    [[ -e "$stale" ]] && remove_tree "$stale"
done
tmp="$(mktemp -d "$cache/knots-trixie.tmp.XXXXXX")"
cleanup() { remove_tree "$tmp"; }
trap cleanup EXIT
log="$cache/knots-trixie.log"
: >"$log"

echo "chain set-up: debootstrap Debian 13 (minbase) into $dest, log in $log"
t0=$(date +%s)
debootstrap --variant=minbase trixie "$tmp" "$mirror" >>"$log" 2>&1 \
    || fail "debootstrap of Debian 13 from the apt mirror failed (archive unreachable?), see $log"

printf 'deb %s trixie main\ndeb %s trixie-backports main\n' "$mirror" "$mirror" >"$tmp/etc/apt/sources.list"
# Inside the chroot, apt must not try to start services or ask questions.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d" && chmod +x "$tmp/usr/sbin/policy-rc.d"
echo "chain set-up: installing bitcoin-knots from trixie-backports"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 \
    || fail "apt-get update inside the Debian 13 folder failed, see $log"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends -t trixie-backports bitcoin-knots >>"$log" 2>&1 \
    || fail "installing bitcoin-knots from trixie-backports failed, see $log"
chroot "$tmp" apt-get clean >>"$log" 2>&1 || true

banner="$(run_knots "$tmp" -version 2>>"$log" | head -n1)" \
    || fail "the installed bitcoind does not run through the Debian 13 loader, see $log"
major="$(printf '%s\n' "$banner" | bitcoind_major)"
[[ -n "$major" && "$major" -ge 26 ]] || fail "installed bitcoind is not v26 or newer: $banner"

printf '%s (set up in %ss)\n' "$banner" "$(( $(date +%s) - t0 ))" >"$tmp/.musig2-stamp"
# Replace any stale (unstamped) folder, then move the finished one into place in one rename.
if [[ -e "$dest" ]]; then remove_tree "$dest"; fi
mv "$tmp" "$dest"
trap - EXIT
rm -f "$errfile"
echo "chain set-up: $(cat "$stamp")"
