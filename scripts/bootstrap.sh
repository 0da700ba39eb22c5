#!/usr/bin/env bash
# Idempotent set-up of everything the project needs, into the project-local virtualenv .venv.
#
# It runs every scripts/bootstrap.d/NN-*.sh in name order; each step checks its own stamp file
# (.venv/.bootstrap/<step>.stamp) and returns at once when its inputs did not change, so a second
# run costs about a second. A step that fails prints one line starting with "bootstrap:" saying
# what is wrong and what to do, and leaves nothing half-installed (downloads go to temporary
# directories, results are moved into place at the end, the stamp is written last).
#
# Environment: PYTHON (a Python 3.11 interpreter to build the venv from; default: python3.11 or
# python3 on PATH), BOOTSTRAP_VERBOSE=1 (show the steps' full output).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MUSIG2_ROOT="$ROOT"
export MUSIG2_VENV="$ROOT/.venv"
export MUSIG2_STAMPS="$MUSIG2_VENV/.bootstrap"

for step in "$ROOT"/scripts/bootstrap.d/[0-9][0-9]-*.sh; do
    [ -e "$step" ] || continue
    # Convention: a step that fails on purpose has printed its one line and exits 1; any other
    # status is an unexpected crash, which gets a line here.
    rc=0
    bash "$step" || rc=$?
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 1 ] || echo "bootstrap: ERROR: step $(basename "$step") crashed (status $rc); rerun with BOOTSTRAP_VERBOSE=1 to see why" >&2
        exit 1
    fi
done
