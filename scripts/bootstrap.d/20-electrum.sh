#!/usr/bin/env bash
# Step 20: Electrum 4.8.x into the virtualenv.
#
# Electrum 4.8 is not on PyPI; Debian ships it as the arch-independent packages python3-electrum (the
# module) and electrum (the launcher script). We fetch both with `apt-get download` through a
# temporary apt configuration (own sources list, lists and cache in a temp dir, so the machine's apt
# state is untouched), whose mirror is the one this machine's apt already uses. The module goes into
# the venv's site-packages, the launcher into .venv/bin/electrum with its interpreter line pointed
# at the venv's python. Electrum's Python dependencies come from requirements.txt (step 10); here we
# only check that its dist-info's requirements are met.
set -euo pipefail
. "$MUSIG2_ROOT/scripts/bootstrap_lib.sh"

VENV="$MUSIG2_VENV"
PY="$VENV/bin/python"
[ -x "$PY" ] || die "no virtualenv python at $PY; run scripts/bootstrap.sh (step 10 makes it)"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
LOGDIR="$MUSIG2_ROOT/.cache/bootstrap"
mkdir -p "$LOGDIR"

installed_version() {
    [ -f "$SITE/electrum/version.py" ] || return 1
    sed -n 's/^ELECTRUM_VERSION *= *["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$SITE/electrum/version.py" | head -n1
}

# Fast path: installed, accepted version, launcher present, stamp matches -> nothing to do (no network).
if cur="$(installed_version)" && electrum_version_ok "$cur" && [ -x "$VENV/bin/electrum" ] \
        && stamp_matches electrum "$cur"; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: Electrum 4.8 is fetched from Debian's archive, so this needs a Debian-like machine"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found; install dpkg"

MIRROR="${DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ]; then
    MIRROR="$(debian_mirror)" || die "no Debian archive configured in /etc/apt (sources.list or sources.list.d/*.sources); add one or set DEBIAN_MIRROR=<archive URI>"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/musig2-electrum.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/dl" "$TMP/root"
# 4.8.x lives in trixie-backports (4.8.4) and sid (4.8.3) as of this writing; both are listed, the
# highest 4.8.x wins. Debian's archive keyring (trusted by this machine's apt) checks the Release files.
cat > "$TMP/sources.list" <<EOF
deb $MIRROR trixie-backports main
deb $MIRROR sid main
EOF
APT_OPTS=(-o "Dir::Etc::SourceList=$TMP/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$TMP/lists" -o "Dir::Cache=$TMP/cache" -o Debug::NoLocking=1
          -o Acquire::Retries=2 -o APT::Get::List-Cleanup=0)

say "fetching the Debian package index for Electrum (temporary apt configuration)"
if ! run_logged "$LOGDIR/apt-update.log" apt-get "${APT_OPTS[@]}" -q update; then
    die "cannot reach the Debian archive at $MIRROR (apt-get update failed, log: $LOGDIR/apt-update.log); check the network or proxy, then rerun"
fi
# apt-get update exits 0 even when some index could not be fetched: insist on having a list.
if ! ls "$TMP/lists/" | grep -q '_Packages'; then
    die "cannot reach the Debian archive at $MIRROR (no package index was downloaded, log: $LOGDIR/apt-update.log); check the network or proxy, then rerun"
fi

versions_of() {
    apt-cache "${APT_OPTS[@]}" show "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -u
}
ALL="$(versions_of python3-electrum)"
[ -n "$ALL" ] || die "Debian's archive at $MIRROR offers no python3-electrum package; Electrum 4.8.x is needed (trixie-backports or sid)"
VER="$(printf '%s\n' "$ALL" | pick_electrum_version)" \
    || die "Debian's archive offers only Electrum $(echo $ALL | tr '\n' ' ')but this plugin needs 4.8.x; use a mirror that carries trixie-backports or sid"
versions_of electrum | grep -qxF "$VER" \
    || die "Debian's archive has python3-electrum $VER but not the matching electrum launcher package; retry later (mirror mid-sync?)"

say "downloading Electrum $VER (python3-electrum, electrum)"
( cd "$TMP/dl" && run_logged "$LOGDIR/apt-download.log" apt-get "${APT_OPTS[@]}" -q download "python3-electrum=$VER" "electrum=$VER" ) \
    || die "download of Electrum $VER from $MIRROR failed (log: $LOGDIR/apt-download.log); check the network, then rerun"
for deb in "$TMP"/dl/*.deb; do
    dpkg-deb -x "$deb" "$TMP/root" || die "cannot unpack $(basename "$deb") (corrupt download?); rerun"
done

SRC="$TMP/root/usr/lib/python3/dist-packages"
[ -f "$SRC/electrum/version.py" ] || die "the python3-electrum package has no electrum/version.py at the expected place; Debian's layout changed"
NEWVER="$(sed -n 's/^ELECTRUM_VERSION *= *["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$SRC/electrum/version.py" | head -n1)"
electrum_version_ok "$NEWVER" || die "the downloaded Electrum is $NEWVER, not 4.8.x; refusing to install it"
[ -f "$TMP/root/usr/bin/electrum" ] || die "the electrum package has no usr/bin/electrum launcher"

# Stage everything next to its final place (same filesystem), then swap with renames.
STAGE="$SITE/.electrum-stage.$$"
rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -a "$SRC/electrum" "$STAGE/electrum"
DISTINFO="$(cd "$SRC" && ls -d electrum-*.dist-info 2>/dev/null | head -n1 || true)"
[ -n "$DISTINFO" ] && cp -a "$SRC/$DISTINFO" "$STAGE/$DISTINFO"
{ echo "#!$PY"; tail -n +2 "$TMP/root/usr/bin/electrum"; } > "$STAGE/electrum-launcher"
chmod 755 "$STAGE/electrum-launcher"

rm -rf "$SITE/.electrum-old"
[ -e "$SITE/electrum" ] && mv "$SITE/electrum" "$SITE/.electrum-old"
mv "$STAGE/electrum" "$SITE/electrum"
for old in "$SITE"/electrum-*.dist-info; do [ -e "$old" ] && rm -rf "$old"; done
[ -n "$DISTINFO" ] && mv "$STAGE/$DISTINFO" "$SITE/$DISTINFO"
mv -f "$STAGE/electrum-launcher" "$VENV/bin/electrum"
rm -rf "$STAGE" "$SITE/.electrum-old"

# Electrum's own runtime requirements (its dist-info, extras excluded) must be satisfied.
if [ -n "$DISTINFO" ]; then
    missing="$("$PY" - "$SITE/$DISTINFO/METADATA" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
missing = []
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.startswith("Requires-Dist:"):
        continue
    req = Requirement(line.split(":", 1)[1].strip())
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        have = version(req.name)
    except PackageNotFoundError:
        missing.append(str(req)); continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        missing.append(str(req))
print(" ".join(missing))
PYEOF
)" || die "could not read Electrum's requirements from its dist-info"
    if [ -n "$missing" ]; then
        say "installing Electrum's requirements not yet in requirements.txt: $missing"
        # shellcheck disable=SC2086
        run_logged "$LOGDIR/pip-electrum.log" "$PY" -m pip install $missing \
            || die "pip could not install Electrum's requirements ($missing); check the network to PyPI (log: $LOGDIR/pip-electrum.log)"
    fi
fi

# The proof: Electrum's own launcher runs from the venv.
GOT="$(cd "$TMP" && HOME="$TMP" "$VENV/bin/electrum" --offline --regtest -D "$TMP/edir" version 2>"$LOGDIR/electrum-version.log" | tail -n1 | tr -d '"[:space:]')" \
    || die "the installed Electrum does not start (log: $LOGDIR/electrum-version.log)"
[ "$GOT" = "$NEWVER" ] || die "the installed Electrum reports version '$GOT', expected $NEWVER (log: $LOGDIR/electrum-version.log)"
stamp_write electrum "$NEWVER"
say "Electrum $NEWVER installed in $VENV"
