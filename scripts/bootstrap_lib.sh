# Shared functions of the bootstrap steps (sourced, not run). Each function does one check or one
# lookup, so the tests (tests/test_foundation_bootstrap.py) can call it on its own with made-up
# input, without touching the real virtualenv or the network.

# One clear line on stderr, then stop: the only way a step reports a problem.
die() {
    echo "bootstrap: ERROR: $*" >&2
    exit 1
}

say() {
    echo "bootstrap: $*" >&2
}

# Prints "MAJOR.MINOR.MICRO" of the interpreter $1, or fails if it cannot run.
python_version_of() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null
}

# Succeeds when version $1 is a Python 3.11.x (the project's only supported interpreter: Electrum's
# Debian build and our pinned wheels are tested on it).
python_version_ok() {
    case "$1" in
        3.11.*) return 0 ;;
        *) return 1 ;;
    esac
}

# Prints the interpreter to build the venv from: $PYTHON if set, else python3.11, else python3.
# Fails with a one-line reason when none is a 3.11.
find_python() {
    local cand ver tried="" cands="python3.11 python3"
    # An explicit choice that is wrong is reported, never silently replaced by another interpreter.
    [ -n "${PYTHON:-}" ] && cands="$PYTHON"
    for cand in $cands; do
        command -v "$cand" >/dev/null 2>&1 || { tried="$tried $cand(missing)"; continue; }
        ver="$(python_version_of "$cand")" || { tried="$tried $cand(does not run)"; continue; }
        if python_version_ok "$ver"; then
            command -v "$cand"
            return 0
        fi
        tried="$tried $cand($ver)"
    done
    echo "need Python 3.11, found:${tried}; install it (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
    return 1
}

# Prints the Debian archive URI configured on this machine (the first non-security "deb" source),
# from deb822 files in /etc/apt/sources.list.d/*.sources or one-line /etc/apt/sources.list[.d/*.list].
# APT_SOURCES_DIR overrides /etc/apt for the tests. The host name is read, never written in the repo.
debian_mirror() {
    local etc="${APT_SOURCES_DIR:-/etc/apt}" f
    for f in "$etc"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: stanzas separated by blank lines; take URIs of a "deb" stanza whose suites are not *-security.
        awk '
            function flush() { if (types ~ /(^| )deb( |$)/ && suites !~ /-security/ && uris != "") { split(uris, u, " "); print u[1]; found=1; exit } types=""; suites=""; uris="" }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "types:"  { $1=""; types=$0 }
            tolower($1) == "uris:"   { $1=""; uris=$0; sub(/^ +/, "", uris) }
            tolower($1) == "suites:" { $1=""; suites=$0 }
            END { if (!found) flush() }
        ' "$f" | head -n1 | grep . && return 0
    done
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # one-line: deb [options] URI suite components...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }' | grep . && return 0
    done
    return 1
}

# Reads Debian version strings of python3-electrum (one per line) on stdin and prints the highest
# whose upstream version is 4.8.x. Fails (status 1) when there is none, printing nothing.
pick_electrum_version() {
    local best="" v upstream
    while IFS= read -r v; do
        v="${v//[[:space:]]/}"
        [ -n "$v" ] || continue
        upstream="${v#*:}"          # drop an epoch
        upstream="${upstream%%-*}"  # drop the Debian revision
        upstream="${upstream%%+*}"  # drop +dfsg and friends
        case "$upstream" in
            4.8|4.8.*) ;;
            *) continue ;;
        esac
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
            best="$v"
        fi
    done
    [ -n "$best" ] || return 1
    echo "$best"
}

# Succeeds when an installed Electrum version string ("4.8.4") is one we accept.
electrum_version_ok() {
    case "$1" in
        4.8|4.8.*) return 0 ;;
        *) return 1 ;;
    esac
}

# stamp_matches NAME CONTENT: the step NAME already ran with exactly these inputs.
stamp_matches() {
    [ -f "$MUSIG2_STAMPS/$1.stamp" ] && [ "$(cat "$MUSIG2_STAMPS/$1.stamp")" = "$2" ]
}

# stamp_write NAME CONTENT: written last, atomically, once the step's result is in place.
stamp_write() {
    mkdir -p "$MUSIG2_STAMPS"
    printf '%s' "$2" > "$MUSIG2_STAMPS/$1.stamp.tmp.$$"
    mv -f "$MUSIG2_STAMPS/$1.stamp.tmp.$$" "$MUSIG2_STAMPS/$1.stamp"
}

# Runs "$@" with its output in LOG (shown live with BOOTSTRAP_VERBOSE=1) and returns its status.
# On failure the caller prints the one-line error, which names the log file for the details.
run_logged() {
    local log="$1"; shift
    mkdir -p "$(dirname "$log")"
    if [ "${BOOTSTRAP_VERBOSE:-0}" = 1 ]; then
        "$@" 2>&1 | tee "$log"
        return "${PIPESTATUS[0]}"
    fi
    "$@" >"$log" 2>&1
}
