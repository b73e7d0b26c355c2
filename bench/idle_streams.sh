#!/usr/bin/env bash
# What idle live streams cost the server (not a test): `mispdash run` (web server only, release
# build) while bench/sse-load holds N `/_logs` streams open from as many loopback addresses as
# the per-address cap needs, with nothing published. Prints the server's RSS before, once every
# stream is open, and HOLD seconds later (after `mispdash run`'s periodic trim of the heap's
# free pages, every 30 s), and the KiB per stream of each.
#   bench/idle_streams.sh [N]     (default 10000; MISPDASH_BIN, HOLD=40)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
HOLD="${HOLD:-40}"
. bench/lib.sh
release_bin idle_streams
[ -x target/release/sse-load ] || { echo "building the SSE load client (cargo build --release -p mispdash-sse-load)"; cargo build --release --quiet -p mispdash-sse-load; }
WORK="$(mktemp -d)"
RPORT=$(free_port); HPORT=$(free_port)
RPID=""; SPID=""; CPID=""
cleanup() {
    for p in $CPID $SPID; do kill "$p" 2>/dev/null || true; done
    [ -z "$RPID" ] || kill "$RPID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
start_redis "$RPORT" "$WORK"
ulimit -n "$(( N * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cat >"$WORK/server.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HPORT
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_instances = []
[RedisMap]
pathMaxMindDB = /nonexistent-for-the-server.mmdb
[mispdash]
max_connections = $(( N + 1000 ))
CFG
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
MISPDASH_LOG=warn "$BIN" --config "$WORK/server.cfg" run --no-subscribers --no-dispatcher --no-managed-redis 2>"$WORK/server.log" &
SPID=$!
until curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.05; done
sleep 1
r0=$(rss "$SPID")
target/release/sse-load --port "$HPORT" --redis-port "$RPORT" -n "$N" --sources "$(( (N + 29) / 30 ))" \
    --probe-ms "$(( (HOLD + 5) * 1000 ))" --duration "$(( HOLD + 5 ))" --drain 1 --ready-file "$WORK/ready" >"$WORK/sse.json" &
CPID=$!
while [ ! -e "$WORK/ready" ]; do sleep 0.1; done
sleep 2
r1=$(rss "$SPID")
sleep "$HOLD"
r2=$(rss "$SPID")
streams=$(curl -s "http://127.0.0.1:$HPORT/status" | python3 -c 'import json,sys;s=json.load(sys.stdin)["streams"];print(s["clients"])')
wait "$CPID" || true; CPID=""
echo "idle streams: $N requested, server says open: $streams; machine: load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$N" "$r0" "$r1" "$r2" "$HOLD" <<'PY'
import sys
n, r0, r1, r2, hold = map(int, sys.argv[1:])
print(f"server RSS: {r0} KiB before, {r1} KiB with every stream open ({(r1 - r0) / n:.1f} KiB per stream), "
      f"{r2} KiB {hold} s later ({(r2 - r0) / n:.1f} KiB per stream): {r2 / 1024:.1f} MiB")
PY
