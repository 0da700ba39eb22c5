#!/usr/bin/env bash
# Step 10: the project-local virtualenv .venv (Python 3.11) with requirements.txt installed.
#
# An existing healthy .venv is kept as it is (other tools may be running from it); only a broken
# one (no runnable python, or not a 3.11) is replaced. pip runs again only when requirements.txt
# changed since the last successful run (its hash is the stamp).
set -euo pipefail
. "$MUSIG2_ROOT/scripts/bootstrap_lib.sh"

VENV="$MUSIG2_VENV"
REQ="$MUSIG2_ROOT/requirements.txt"
LOGDIR="$MUSIG2_ROOT/.cache/bootstrap"
mkdir -p "$LOGDIR"

venv_healthy() {
    [ -f "$VENV/pyvenv.cfg" ] && [ -x "$VENV/bin/python" ] || return 1
    local v
    v="$(python_version_of "$VENV/bin/python")" || return 1
    python_version_ok "$v"
}

if ! venv_healthy; then
    BASEPY="$(find_python 2>"$LOGDIR/python.err")" || die "$(cat "$LOGDIR/python.err")"
    if [ -e "$VENV" ]; then
        say "replacing the broken virtualenv $VENV"
        mv "$VENV" "$VENV.broken.$$" && rm -rf "$VENV.broken.$$"
    fi
    say "creating the virtualenv $VENV with $BASEPY"
    if ! run_logged "$LOGDIR/venv.log" "$BASEPY" -m venv "$VENV"; then
        rm -rf "$VENV"
        die "'$BASEPY -m venv' failed (log: $LOGDIR/venv.log); on Debian install python3.11-venv, then rerun"
    fi
fi

PYVER="$(python_version_of "$VENV/bin/python")"
KEY="$PYVER $(sha256sum "$REQ" | cut -d' ' -f1)"
if stamp_matches python "$KEY"; then
    exit 0
fi

# electrum_ecc (Electrum's libsecp256k1 binding) has no wheel: pip compiles the libsecp256k1 it
# bundles, which needs autotools. Install them from the machine's own apt when missing.
if ! "$VENV/bin/python" -c 'import electrum_ecc' >/dev/null 2>&1; then
    need=()
    command -v autoreconf >/dev/null 2>&1 || need+=(autoconf)
    command -v automake   >/dev/null 2>&1 || need+=(automake)
    command -v libtoolize >/dev/null 2>&1 || need+=(libtool)
    if [ "${#need[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "electrum_ecc needs ${need[*]} to build libsecp256k1; run: sudo apt-get install ${need[*]}"
        say "installing ${need[*]} (needed to build electrum_ecc's libsecp256k1)"
        export DEBIAN_FRONTEND=noninteractive
        if ! run_logged "$LOGDIR/apt-install.log" apt-get install -y -q "${need[@]}"; then
            run_logged "$LOGDIR/apt-update-system.log" apt-get update -q \
                || die "apt-get update failed: no network to the Debian archive? (log: $LOGDIR/apt-update-system.log)"
            run_logged "$LOGDIR/apt-install.log" apt-get install -y -q "${need[@]}" \
                || die "apt-get install ${need[*]} failed (log: $LOGDIR/apt-install.log)"
        fi
    fi
fi

say "installing requirements.txt into $VENV (pip)"
run_logged "$LOGDIR/pip.log" "$VENV/bin/python" -m pip install -q -r "$REQ" \
    || die "pip could not install requirements.txt (log: $LOGDIR/pip.log); check the network to PyPI, then rerun"

# electrum_ecc must load the libsecp256k1 it built into its own package directory (it tries that
# first), not whatever libsecp256k1.so.N the system happens to have.
"$VENV/bin/python" - <<'PYEOF' || die "electrum_ecc does not load its own libsecp256k1 (see above); reinstall it: .venv/bin/pip install --force-reinstall --no-binary electrum_ecc electrum_ecc"
import os, sys
import electrum_ecc.ecc_fast as f
lib = f._libsecp256k1._name
pkg = os.path.dirname(f.__file__)
if os.path.dirname(os.path.abspath(lib)) != pkg or not f.HAS_SCHNORR:
    print(f"bootstrap: electrum_ecc loaded {lib} (schnorr={f.HAS_SCHNORR}), expected the one in {pkg}", file=sys.stderr)
    sys.exit(1)
PYEOF
stamp_write python "$KEY"
