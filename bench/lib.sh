# Shared by the benchmark scripts (sourced): a free loopback port, and a throw-away Redis.

# build_pages_and_release NAME: unless MISPDASH_BIN names a binary already built, the pages
# and the release binary (what users run), saying so first since a first build takes minutes.
build_pages_and_release() {
    if [ -z "${MISPDASH_BIN:-}" ]; then
        echo "$1: building the pages and the release binary"
        npm run --prefix core/web --silent build >/dev/null
        cargo build --release --quiet -p mispdash
    fi
}

# release_bin NAME: BIN is MISPDASH_BIN when set, else the release binary, built first and
# saying so (a first build takes minutes).
release_bin() {
    if [ -n "${MISPDASH_BIN:-}" ]; then
        BIN="$MISPDASH_BIN"
    else
        echo "$1: building the release binary (cargo build --release)"
        cargo build --release --quiet -p mispdash
        BIN=target/release/mispdash
    fi
}

# geolite_mmdb: MMDB when set, else the GeoLite2 City database of the maxminddb-geolite2 Python
# package (scripts/setup.sh installs it), else /nonexistent (the maps stay empty).
geolite_mmdb() {
    [ -n "${MMDB:-}" ] && { echo "$MMDB"; return; }
    python3 -c 'import _maxminddb_geolite2,os;print(os.path.join(os.path.dirname(_maxminddb_geolite2.__file__),"GeoLite2-City.mmdb"))' 2>/dev/null || echo /nonexistent
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_redis PORT DIR [ARG...]: a Redis on 127.0.0.1:PORT, without persistence unless the
# extra redis-server ARGs say otherwise (later options win), its pid in RPID, answering when
# this returns.
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$2" "${@:3}" >/dev/null 2>&1 &
    RPID=$!
    until redis-cli -p "$1" ping >/dev/null 2>&1; do sleep 0.05; done
}

# start_seed2_dashboard BIN CORPUS PORT HTTP DIR: the release `mispdash run` (dispatcher and
# server, the clock pinned to the corpus's instant) on the Redis at PORT, serving on HTTP, with
# CORPUS replayed through it; its pid in DPID, the buffer drained when this returns.
start_seed2_dashboard() {
    printf '[Server]\nhost = 127.0.0.1\nport = %s\n[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nmisp_instances = []\n' "$4" "$3" >"$5/c.cfg"
    export MISPDASH_FAKE_NOW=1795176000 TZ=UTC NO_COLOR=1
    "$1" --config "$5/c.cfg" replay "$2" --name misp1 >/dev/null 2>&1
    "$1" --config "$5/c.cfg" run --no-subscribers --no-managed-redis 2>"$5/run.log" &
    DPID=$!
    until [ "$(redis-cli -p "$3" -n 3 llen bufferList)" = 0 ] && curl -s "http://127.0.0.1:$4/healthz" >/dev/null; do
        sleep 0.2
    done
}

# wheel_venv DIR WHEEL: a venv of Debian's python3 in DIR/venv with WHEEL (and pytest, whose
# test_apache module writes the Apache configuration), readable by Apache's user.
wheel_venv() {
    chmod 755 "$1"
    /usr/bin/python3 -m venv "$1/venv"
    "$1/venv/bin/pip" install --quiet --disable-pip-version-check "$2" "pytest>=8,<10"
    chmod -R a+rX "$1/venv"
}

# apache_site DIR PORT THREADS: the repository's vhost and .wsgi entry under DIR/apache,
# paths substituted as the Apache tests do (py-bindings/tests/test_apache.py), serving plain
# HTTP on 127.0.0.1:PORT with THREADS threads in the WSGI daemon (empty: the vhost's own).
apache_site() {
    mkdir -p "$1/apache/share"
    cp wsgi-shim/misp-dashboard.wsgi "$1/apache/share/"
    chmod -R a+rX "$1/apache"
    local tport
    tport=$(free_port)
    (cd py-bindings/tests && "$1/venv/bin/python" - "$1/apache" "$2" "$tport" "$1/venv" "${3:-}" <<'PY'
import sys
from pathlib import Path
from test_apache import main_conf, site_conf
d, port, tls_port, venv = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
extra = {"threads": int(sys.argv[5])} if sys.argv[5] else {}
main_conf(d, site_conf(d, port, tls_port, venv, d / "share", **extra))
PY
    )
    chmod a+r "$1/apache/dashboard.key"
}
