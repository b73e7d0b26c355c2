#!/usr/bin/env bash
# HTTP benchmark (not a test): requests/s and latency of the JSON routes with wrk, and live
# fan-out to many SSE clients while a corpus replays through the real ingest. Everything on
# loopback; the keyspace is the original's seed2 recording (../shared/corpus/seed2.redis.json),
# the clock pinned to its instant. Method as ../shared/corpus/original-baseline.md
# (wrk -t2 -c8 -d10s --latency, Accept: application/json).
#   bench/http_bench.sh [SSE_CLIENTS] [REPLAY_RATE]     (defaults 1000 clients, 100 msg/s)
#   MISPDASH_BIN=... to use another binary; DURATION=10 seconds per wrk run; SKIP_WRK=1 for
#   the fan-out part only, SSE_CLIENT=python for the Python clients (default: bench/sse-load),
#   SKIP_FANOUT=1 for the routes only, CACHE_OFF_ONLY=1 for the routes
#   without the answer cache only, ONLY=<regex> for some routes; PROCS=2 client processes.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-1000}"
RATE="${2:-100}"
DURATION="${DURATION:-10}"
SHARED="${SHARED:-../shared}"
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh test installs it" >&2; exit 1; }
release_bin http_bench
WORK="$(mktemp -d)"
RPORT=$(free_port)
HPORT=$(free_port)
ZPORT=$(free_port)
RPID=""
SPID=""
IPID=""
cleanup() {
    for p in $SPID $IPID; do kill "$p" 2>/dev/null || true; done
    kill "$RPID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
start_redis "$RPORT" "$WORK"
RC="redis-cli -p $RPORT"
python3 bench/http_load_keyspace.py "$SHARED/corpus/seed2.redis.json" | $RC --pipe >/dev/null
MMDB="$(geolite_mmdb)"
cat >"$WORK/server.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HPORT
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_web_url = http://0.0.0.0
misp_instances = []
[RedisMap]
pathMaxMindDB = /nonexistent-for-the-server.mmdb
CFG
cat >"$WORK/ingest.cfg" <<CFG
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_instances = [{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:$ZPORT"}]
[RedisMap]
pathMaxMindDB = $MMDB
path_countrycode_to_coord_JSON = $SHARED/data/country_code_lat_long.json
CFG
export TZ=UTC MISPDASH_FAKE_NOW=1795176000
N=1795176000

start_server() { # extra flags
    MISPDASH_LOG="${MISPDASH_LOG:-info}" "$BIN" --config "$WORK/server.cfg" run --no-subscribers --no-dispatcher --no-managed-redis "$@" 2>"$WORK/server.log" &
    SPID=$!
    until curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.05; done
}
stop_server() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""; }
cpu_of() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }

ORG="Lumen%20Media%20CSIRT"
WEEK="dateS=$((N - 604800))&dateE=$N"
# /healthz first (the server's own limit in this run), then every JSON route of
# ../shared/spec/http.md §1 with the parameters the pages send.
ROUTES=(
    "/healthz"
    "/_logs"
    "/_maps"
    "/_get_log_head"
    "/_getTopCoord?date=$N"
    "/_getHitMap?date=$N"
    "/_getCoordsByRadius?dateStart=$((N - 86400))&dateEnd=$N&centerLat=48.8&centerLon=2.3&radius=1500"
    "/_getLastContributors"
    "/_getTopContributor?date=$N"
    "/_getFameContributor?date=$N"
    "/_getFameQualContributor?date=$N"
    "/_getTop5Overtime"
    "/_getOrgOvertime?org=$ORG"
    "/_getCategPerContrib?date=$N"
    "/_getLatestAwards"
    "/_getAllOrg"
    "/_getOrgRank?org=$ORG"
    "/_getContributionOrgStatus?org=$ORG"
    "/_getHonorBadges?org=$ORG"
    "/_getTrophies?org=$ORG"
    "/_getAllOrgsTrophyRanking"
    "/_getAllOrgsTrophyRanking/network_activity"
    "/_getUserLogins?date=$N"
    "/_getAllLoggedOrg"
    "/_getTopOrglogin?date=$N"
    "/_getLoginVSCOntribution?date=$N"
    "/_getUserLoginsAndContribOvertime?date=$N"
    "/_getTrendingEvents?$WEEK"
    "/_getTrendingCategs?$WEEK"
    "/_getTrendingTags?$WEEK"
    "/_getTrendingSightings?$WEEK"
    "/_getTrendingDisc?$WEEK"
    "/_getTypeaheadData"
    "/_getGenericTrendingOvertime?dateS=$((N - 2592000))&dateE=$N&choice=events"
)
# ONLY="a|b": the routes whose path matches this extended regex (with /healthz always).
if [ -n "${ONLY:-}" ]; then
    sel=("/healthz")
    for r in "${ROUTES[@]}"; do [[ "$r" == /healthz ]] || ! [[ "$r" =~ $ONLY ]] || sel+=("$r"); done
    ROUTES=("${sel[@]}")
fi

run_wrk() { # label
    echo "## $1"
    echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '| route | body | req/s | of /healthz | p50 | p90 | p99 | non-2xx | server CPU s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
    local base_rps=""
    for r in "${ROUTES[@]}"; do
        local bytes c0 c1 out line
        bytes=$(curl -s -H 'Accept: application/json' "http://127.0.0.1:$HPORT$r" | wc -c)
        c0=$(cpu_of "$SPID")
        out=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 10s --latency -H "Accept: application/json" "http://127.0.0.1:$HPORT$r")
        c1=$(cpu_of "$SPID")
        line=$(WRK_OUT="$out" python3 - "$r" "$bytes" "$c0" "$c1" "$base_rps" <<'PY'
import os, re, sys
out = os.environ["WRK_OUT"]
route, size, c0, c1, base = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
err = re.search(r"Socket errors:.*", out)
share = "%.0f %%" % (100 * rps / float(base)) if base else "100 %"
print("%s\t| `%s` | %s B | **%.0f** | %s | %s | %s | %s | %s%s | %.1f |" % (rps, route.split("?")[0], size, rps, share,
      lat.get("50"), lat.get("90"), lat.get("99"), bad.group(1) if bad else 0,
      " (" + err.group(0) + ")" if err else "", c1 - c0))
PY
)
        [ -n "$base_rps" ] || base_rps="${line%%$'\t'*}"
        echo "${line#*$'\t'}"
    done
    echo "server VmHWM: $(awk '/VmHWM/{print $2" kB"}' "/proc/$SPID/status")"
    echo
}

echo "# mispdash HTTP benchmark ($(date -u +%F), $(nproc) cores, wrk -t2 -c8 -d${DURATION}s)"
echo
if [ -z "${SKIP_WRK:-}" ]; then
    if [ -z "${CACHE_OFF_ONLY:-}" ]; then
        start_server
        run_wrk "JSON routes, default response cache (1 s)"
        stop_server
    fi
    start_server --http-cache-ms 0
    run_wrk "JSON routes, response cache off (--http-cache-ms 0): every request reads Redis"
    stop_server
fi
[ -z "${SKIP_FANOUT:-}" ] || exit 0

# ---- live fan-out: SSE clients on /_logs while seed2 replays through the real ingest ----
# Without login the server caps live streams per address ([mispdash] max_streams_per_client,
# 32) and connections per address (256): the clients come from as many loopback addresses as
# that needs (SOURCES), as screens on as many machines would. Past 3,000 clients the server's
# total connections and this shell's open-files limit are raised to hold them.
SOURCES="${SOURCES:-$(( (CLIENTS + 29) / 30 ))}"
if [ "$CLIENTS" -gt 3000 ]; then
    ulimit -n "$(( CLIENTS * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    printf '[mispdash]\nmax_connections = %s\n' "$(( CLIENTS + 1000 ))" >>"$WORK/server.cfg"
    echo "fan-out: $CLIENTS clients: open-files limit $(ulimit -n), [mispdash] max_connections = $(( CLIENTS + 1000 ))"
fi
echo "fan-out: $CLIENTS clients from $SOURCES loopback addresses (at most 32 streams each)"
MISPDASH_LOG=warn start_server
"$BIN" --config "$WORK/ingest.cfg" run --no-server --no-managed-redis 2>"$WORK/ingest.log" &
IPID=$!
if [ "${SSE_CLIENT:-rust}" = rust ]; then
    # The Rust clients (bench/sse-load) read as fast as the server writes; the Python ones
    # (SSE_CLIENT=python) could not follow 10,000 streams on the same two cores.
    [ -x target/release/sse-load ] || { echo "building the SSE load client (cargo build --release -p mispdash-sse-load)"; cargo build --release --quiet -p mispdash-sse-load; }
    target/release/sse-load --port "$HPORT" --redis-port "$RPORT" -n "$CLIENTS" --sources "$SOURCES" \
        --duration "$(python3 -c "print(3000/$RATE + 5)")" --drain 5 --ready-file "$WORK/ready" >"$WORK/sse.json" &
else
    python3 bench/http_sse_clients.py --port "$HPORT" --redis-port "$RPORT" -n "$CLIENTS" --procs "${PROCS:-2}" --sources "$SOURCES" \
        --duration "$(python3 -c "print(3000/$RATE + 5)")" --drain 5 --ready-file "$WORK/ready" >"$WORK/sse.json" &
fi
CPID=$!
while [ ! -e "$WORK/ready" ]; do sleep 0.1; done
# Read once the clients are connected: the server subscribes (and reads the live cache into
# its history, which the original's route does not replay) only when the first stream opens.
pub0=$(curl -s "http://127.0.0.1:$HPORT/status" | python3 -c 'import json,sys;print(json.load(sys.stdin)["streams"]["published"]["live"])')
c0=$(cpu_of "$SPID")
python3 "$SHARED/tools/zmq_replay.py" "$SHARED/corpus/seed2.jsonl" --bind "tcp://127.0.0.1:$ZPORT" --rate "$RATE" --quiet --wait-timeout 30
wait "$CPID"
c1=$(cpu_of "$SPID")
pub1=$(curl -s "http://127.0.0.1:$HPORT/status" | python3 -c 'import json,sys;print(json.load(sys.stdin)["streams"]["published"]["live"])')
echo "## Live fan-out: $CLIENTS SSE clients on /_logs, seed2 replayed at $RATE msg/s through the ingest"
python3 - "$WORK/sse.json" "$pub0" "$pub1" "$c0" "$c1" "$(awk '/VmHWM/{print $2}' "/proc/$SPID/status")" "$(awk '/VmRSS/{print $2}' "/proc/$SPID/status")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
published = int(sys.argv[3]) - int(sys.argv[2])
print("- live events published by the server: %d; per client received: min %d, max %d (every event to every client: %s)"
      % (published, r["events_min"], r["events_max"], r["events_min"] == r["events_max"] == published))
print("- clients connected %d of %d (in %d processes), closed before the end %d" % (r["connected"], r["clients"], r["client_processes"], r["dropped_before_end"]))
print("- probe delivery (publish on Redis -> client read): %d of %d deliveries, p50 %s ms, p99 %s ms, max %s ms"
      % (r["probe_deliveries"], r["probe_deliveries_expected"], r["latency_ms_p50"], r["latency_ms_p99"], r["latency_ms_max"]))
print("- server CPU during the replay: %.1f s; server peak RSS (VmHWM) %.1f MiB, RSS at the end %.1f MiB"
      % (float(sys.argv[5]) - float(sys.argv[4]), int(sys.argv[6]) / 1024, int(sys.argv[7]) / 1024))
PY
