#!/usr/bin/env bash
# Through Apache + mod_wsgi (not a test): requests/s and latency of `/_getTopContributor` and
# `/_logs` (JSON) with wrk -t2 -c8, through Apache (the repository's apache/ vhost and
# wsgi-shim/ entry, the release wheel in a venv of Debian's python3) and from the standalone
# server, in alternating pairs; then 100 SSE clients on /_logs through Apache with the
# delivery latency of probe events. seed2's keyspace, clock pinned. Method as
# ../shared/corpus/original-baseline.md.
#   bench/apache.sh          DURATION=10 seconds per wrk run, PAIRS=2
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DURATION="${DURATION:-10}"
PAIRS="${PAIRS:-2}"
SHARED="${SHARED:-../shared}"
command -v wrk >/dev/null && command -v apache2 >/dev/null ||
    { echo "wrk or apache2 is missing: scripts/setup.sh test installs them" >&2; exit 1; }
echo "apache bench: building the release wheel and binary (several minutes the first time)"
MISPDASH_WHEEL_PROFILE=release bash scripts/package.sh wheel >/dev/null
cargo build --release --quiet -p mispdash
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
wheel_venv "$WORK" "$(ls target/wheels/mispdash-*.whl | head -1)"
RPORT=$(free_port)
HPORT=$(free_port)
APORT=$(free_port)
start_redis "$RPORT" "$WORK"
APID=""
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    [ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
    kill "$RPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
python3 bench/http_load_keyspace.py "$SHARED/corpus/seed2.redis.json" | redis-cli -p "$RPORT" --pipe >/dev/null
export TZ=UTC MISPDASH_FAKE_NOW=1795176000
N=1795176000
# The SSE clients come from 8 addresses (127.0.0.1-8); the per-client stream cap is raised for
# them (under Apache it is also at most a quarter of the stream slots).
printf '[Server]\nhost = 127.0.0.1\nport = %s\n[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nmisp_web_url = http://0.0.0.0\nmisp_instances = []\n[RedisMap]\npathMaxMindDB = /nonexistent.mmdb\n[mispdash]\nmax_streams_per_client = 1000\n' \
    "$HPORT" "$RPORT" >"$WORK/config.cfg"
chmod 644 "$WORK/config.cfg"

# The vhost and the entry file of the repository, paths substituted as the tests do.
# 150 threads: 112 may hold streams (the 100 clients below), 38 stay for the requests.
apache_site "$WORK" "$APORT" 150
MISPDASH_CONFIG="$WORK/config.cfg" apache2 -f "$WORK/apache/httpd.conf" -DFOREGROUND 2>"$WORK/apache.log" &
APID=$!
"target/release/mispdash" --config "$WORK/config.cfg" run --no-subscribers --no-dispatcher --no-managed-redis 2>"$WORK/server.log" &
SPID=$!
until curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null && curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.1; done

measure() { # base route
    local out
    out=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 10s --latency -H "Accept: application/json" "$1$2")
    WRK_OUT="$out" python3 -c '
import os, re
out = os.environ["WRK_OUT"]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
print("%s req/s, p50 %s, p99 %s%s" % (rps, lat.get("50"), lat.get("99"), ", non-2xx %s" % bad.group(1) if bad else ""))'
}

echo "# through Apache + mod_wsgi vs the standalone server ($(date -u +%F), $(nproc) cores, wrk -t2 -c8 -d${DURATION}s)"
for route in "/_getTopContributor?date=$N" "/_logs"; do
    for i in $(seq 1 "$PAIRS"); do
        echo "$route pair $i: apache:     $(measure "http://127.0.0.1:$APORT" "$route")"
        echo "$route pair $i: standalone: $(measure "http://127.0.0.1:$HPORT" "$route")"
    done
done
echo "apache's mispdash daemon process, peak RSS: $(for p in $(pgrep -f 'wsgi:misp-dashboard' || true); do awk '/VmHWM/{print $2" kB"}' /proc/$p/status 2>/dev/null; done | head -1)"
# The ceiling: a WSGI application that only returns the same bytes, through the same Apache,
# vhost and daemon (mod_wsgi reloads a changed entry file).
curl -s -H 'Accept: application/json' "http://127.0.0.1:$HPORT/_getTopContributor?date=$N" >"$WORK/apache/share/body.json"
cat >"$WORK/apache/share/misp-dashboard.wsgi" <<PY
BODY = open("$WORK/apache/share/body.json", "rb").read()
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
PY
chmod a+r "$WORK/apache/share/"*
sleep 1
curl -s "http://127.0.0.1:$APORT/" >/dev/null
for i in $(seq 1 "$PAIRS"); do
    echo "a static WSGI answer of the same bytes, same Apache ($i): $(measure "http://127.0.0.1:$APORT" "/_getTopContributor?date=$N")"
done
cp wsgi-shim/misp-dashboard.wsgi "$WORK/apache/share/misp-dashboard.wsgi"
sleep 1
until curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null; do sleep 0.1; done

echo "## 100 SSE clients on /_logs through Apache, probe events every 100 ms for 20 s"
python3 bench/http_sse_clients.py --port "$APORT" --redis-port "$RPORT" -n 100 --procs 1 --sources 8 --duration 20 --drain 3 |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
print("clients connected %d of %d; probe deliveries %d of %d; p50 %s ms, p99 %s ms, max %s ms" % (
    r["connected"], r["clients"], r["probe_deliveries"], r["probe_deliveries_expected"],
    r["latency_ms_p50"], r["latency_ms_p99"], r["latency_ms_max"]))'
echo "machine: $(uptime)"
