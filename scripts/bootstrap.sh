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
    if ! bash "$step"; then
        echo "bootstrap: step $(basename "$step") failed (see the line above); fix it and rerun scripts/bootstrap.sh" >&2
        exit 1
    fi
done
