#!/usr/bin/env bash
# Backfill benchmark (not a test): `mispdash backfill` of EVENTS published events of ATTRIBUTES
# attributes each from bench/misp_rest_standin.py (a stand-in for MISP's REST API, which cannot
# run here) into a fresh Redis, while the release `mispdash run` (dispatcher and web server on,
# no subscribers) drains the buffer. Prints the backfill command's time and peak RSS, the time
# until the keyspace holds everything (buffer drained), and the dashboard's peak RSS.
#   bench/backfill.sh [EVENTS] [ATTRIBUTES]      (defaults 5000, 50; MISPDASH_BIN=... to reuse)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-5000}"
ATTRIBUTES="${2:-50}"
BIN="${MISPDASH_BIN:-target/release/mispdash}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_pages_and_release backfill
WORK="$(mktemp -d)"
RPORT=$(free_port)
MPORT=$(free_port)
HPORT=$(free_port)
start_redis "$RPORT" "$WORK"
NOW=1795176000
python3 bench/misp_rest_standin.py --port "$MPORT" --events "$EVENTS" --attributes "$ATTRIBUTES" --now "$NOW" &
MPID=$!
DPID=""
trap 'for p in $DPID $MPID $RPID; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
cat >"$WORK/c.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HPORT
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_instances = [{"name": "misp1", "url": "http://127.0.0.1:$MPORT", "zmq": "tcp://127.0.0.1:1", "api_key": "bench-key"}]
CFG
export TZ=UTC MISPDASH_FAKE_NOW=$NOW NO_COLOR=1
until curl -s -o /dev/null -X POST "http://127.0.0.1:$MPORT/events/restSearch" -d '{"limit": 1}'; do sleep 0.2; done
MISPDASH_LOG=warn "$BIN" --config "$WORK/c.cfg" run --no-subscribers --no-managed-redis --no-demo 2>"$WORK/run.log" &
DPID=$!
until curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.1; done
echo "# backfill of $EVENTS events x $ATTRIBUTES attributes ($(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s.%N)
/usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" --config "$WORK/c.cfg" backfill --since 30d --no-sightings >"$WORK/out" 2>"$WORK/err"
t1=$(date +%s.%N)
until [ "$(redis-cli -p "$RPORT" -n 3 llen bufferList)" = 0 ] && [ "$(redis-cli -p "$RPORT" -n 3 llen bufferList:processing)" = 0 ]; do
    sleep 0.1
done
t2=$(date +%s.%N)
cat "$WORK/out"
read -r wall rss <"$WORK/time"
python3 - "$EVENTS" "$ATTRIBUTES" "$t0" "$t1" "$t2" "$wall" "$rss" "$(awk '/VmHWM/{print $2}' "/proc/$DPID/status")" <<'PY'
import sys
ev, at, t0, t1, t2, wall, rss, hwm = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:6]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
print("- backfill command: %.1f s (%.0f events/s read and queued), peak RSS %.1f MiB" % (t1 - t0, ev / (t1 - t0), rss / 1024))
print("- until the keyspace holds all of it (buffer drained): %.1f s: %.0f events/s, %.0f attributes/s"
      % (t2 - t0, ev / (t2 - t0), ev * at / (t2 - t0)))
print("- the dashboard (mispdash run, dispatcher and server): peak RSS %.1f MiB" % (hwm / 1024))
PY
