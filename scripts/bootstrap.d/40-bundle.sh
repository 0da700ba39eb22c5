#!/usr/bin/env bash
# Step 40: .venv-bundle, a stand-in for Electrum's binary bundles, and a libsecp256k1 without
# the MuSig2 module.
#
# WHY: most users run Electrum's AppImage / Windows / macOS bundles, which carry Electrum's own
# runtime dependencies and nothing else. .venv-bundle has exactly those: Electrum 4.8 (the same
# module step 20 put into .venv) and the packages its dist-info requires with no extra, or with
# the extras the desktop bundles are built with: "gui" (PyQt6) and "crypto" (cryptography;
# electrum.crypto refuses to import without it). Hardware-wallet libraries are left out. Versions
# are pinned to what .venv has, so both environments run the same code. No plugin dependency
# (coincurve, kademlia, rpcudp, u-msgpack-python) is installed: the plugin zip must bring what
# it needs (tests/test_bundle_env.py proves they are absent).
#
# The second product is .venv-bundle/opt/libsecp256k1-nomusig/libsecp256k1.so.7: the
# libsecp256k1 sources electrum_ecc ships, configured as electrum_ecc does but with
# --disable-module-musig, so a test can run Electrum on a library that lacks MuSig2.
#
# Idempotent: a stamp inside .venv-bundle records the inputs (Electrum version, pinned versions);
# a rerun with the same inputs is a no-op. Built in a temporary folder, renamed at the end.
set -euo pipefail
. "$MUSIG2_ROOT/scripts/bootstrap_lib.sh"

DEV="$MUSIG2_VENV"
DEVPY="$DEV/bin/python"
DEST="$MUSIG2_ROOT/.venv-bundle"
LOGDIR="$MUSIG2_ROOT/.cache/bootstrap"
mkdir -p "$LOGDIR"
[ -x "$DEVPY" ] || die "no $DEVPY; steps 10 and 20 make it"

SITE="$("$DEVPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
DISTINFO="$(cd "$SITE" && ls -d electrum-*.dist-info 2>/dev/null | head -n1 || true)"
[ -n "$DISTINFO" ] || die "Electrum's dist-info is missing from $SITE; rerun scripts/bootstrap.sh (step 20)"

# Electrum's runtime requirements (no extra, "gui", "crypto"), pinned to .venv's versions.
REQS="$("$DEVPY" - "$SITE/$DISTINFO/METADATA" <<'PYEOF'
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
names = []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("Requires-Dist:"):
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", "gui", "crypto")):
            names.append(req.name)
print(" ".join(f"{n}=={version(n)}" for n in sorted(set(names), key=str.lower)))
PYEOF
)" || die "could not read Electrum's requirements from $SITE/$DISTINFO"
EVER="$(sed -n 's/^Version: //p' "$SITE/$DISTINFO/METADATA" | head -n1)"
KEY="electrum=$EVER $REQS nomusig=1 v2"
if [ -f "$DEST/.bundle-stamp" ] && [ "$(cat "$DEST/.bundle-stamp")" = "$KEY" ]; then
    exit 0
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/musig2-bundle.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
STAGE="$MUSIG2_ROOT/.venv-bundle.stage.$$"
rm -rf "$STAGE"
trap 'rm -rf "$TMP" "$STAGE"' EXIT

BASEPY="$(find_python 2>"$LOGDIR/bundle-python.err")" || die "$(cat "$LOGDIR/bundle-python.err")"
say "creating the bundle-like environment .venv-bundle (Electrum $EVER and its own dependencies only)"
# Built under a sibling name, then renamed into place: bin/python is a symlink and pyvenv.cfg
# names only the base interpreter, so `.venv-bundle/bin/python -m ...` works after the rename
# (pip's console-script shebangs would not; nothing here uses them).
run_logged "$LOGDIR/bundle-venv.log" "$BASEPY" -m venv "$STAGE" \
    || die "'$BASEPY -m venv' failed (log: $LOGDIR/bundle-venv.log)"
# shellcheck disable=SC2086
run_logged "$LOGDIR/bundle-pip.log" "$STAGE/bin/python" -m pip install -q $REQS \
    || die "pip could not install Electrum's requirements into .venv-bundle (log: $LOGDIR/bundle-pip.log); check the network to PyPI"
BSITE="$("$STAGE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -a "$SITE/electrum" "$BSITE/electrum"
cp -a "$SITE/$DISTINFO" "$BSITE/$DISTINFO"
find "$BSITE/electrum" -name __pycache__ -prune -exec rm -rf {} +

# libsecp256k1 without MuSig2, from the sources in electrum_ecc's sdist (same version as .venv's).
ECCVER="$("$DEVPY" -c 'from importlib.metadata import version; print(version("electrum_ecc"))')"
say "building a libsecp256k1 without the MuSig2 module (electrum_ecc $ECCVER sources)"
( cd "$TMP" && run_logged "$LOGDIR/bundle-ecc-sdist.log" "$DEVPY" -m pip download -q --no-deps \
      --no-binary :all: "electrum_ecc==$ECCVER" -d "$TMP/sdist" ) \
    || die "could not download electrum_ecc $ECCVER's sources (log: $LOGDIR/bundle-ecc-sdist.log)"
tar xzf "$TMP"/sdist/electrum_ecc-*.tar.gz -C "$TMP" || die "cannot unpack electrum_ecc's sources"
SRC="$(ls -d "$TMP"/electrum_ecc-*/libsecp256k1)"
(
    cd "$SRC"
    ./autogen.sh && ./configure --enable-shared --disable-static --with-pic \
        --enable-module-recovery --enable-module-extrakeys --enable-module-schnorrsig \
        --enable-module-ecdh --enable-experimental --disable-module-musig \
        --enable-benchmark=no --enable-tests=no --enable-exhaustive-tests=no \
        --disable-ctime-tests --disable-examples && make
) >"$LOGDIR/bundle-nomusig-build.log" 2>&1 \
    || die "building libsecp256k1 without MuSig2 failed (log: $LOGDIR/bundle-nomusig-build.log); autotools and a C compiler are needed"
mkdir -p "$STAGE/opt/libsecp256k1-nomusig"
cp -L "$SRC/.libs/libsecp256k1.so" "$STAGE/opt/libsecp256k1-nomusig/libsecp256k1.so"
if nm -D "$STAGE/opt/libsecp256k1-nomusig/libsecp256k1.so" 2>/dev/null | grep -q secp256k1_musig_; then
    die "the library built without the musig module still exports secp256k1_musig_* symbols"
fi

# Swap into place; Electrum's launcher is written for the final path.
rm -rf "$DEST"
mv "$STAGE" "$DEST"
{ echo "#!$DEST/bin/python"; tail -n +2 "$DEV/bin/electrum"; } > "$DEST/bin/electrum"
chmod 755 "$DEST/bin/electrum"

# The proofs: Electrum runs there, and none of the plugin's own dependencies is importable.
"$DEST/bin/python" - <<'PYEOF' || die ".venv-bundle is not a bundle-like environment (see above)"
import importlib.util, sys
present = [m for m in ("coincurve", "kademlia", "rpcudp", "umsgpack") if importlib.util.find_spec(m)]
if present:
    sys.exit(f"bootstrap: .venv-bundle has plugin dependencies installed: {present}")
import electrum, electrum_ecc  # noqa: F401
PYEOF
printf '%s' "$KEY" > "$DEST/.bundle-stamp"
say ".venv-bundle ready (Electrum $EVER, $(echo "$REQS" | wc -w) packages; no plugin dependency)"
