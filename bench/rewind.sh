#!/usr/bin/env bash
# Rewind stream benchmark (not a test): what the rewind stream (MISPDASH_REWIND) costs in
# Redis over a day at RATE messages a second, with the real dispatcher (`mispdash run
# --no-subscribers`, release build). One hour of the bench mix (RATE x 3600 messages of
# gen_corpus.py --mix bench) is drained once per simulated hour, the dispatcher's clock pinned
# to that hour (MISPDASH_FAKE_NOW), so the stream is written and trimmed exactly as in a day of
# live ingest, only faster. After each hour: the stream's entries, the bytes counter, Redis's
# MEMORY USAGE of the stream, Redis's used memory, the oldest entry's age, and the dispatcher's
# peak RSS. Then one window read and one CSV export through `mispdash run`'s server, with its
# RSS.
#   bench/rewind.sh [HOURS] [RATE] [MAX_BYTES]   (defaults 24, 100, 268435456 = the default
#                                                 bound; MISPDASH_BIN to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
HOURS="${1:-24}"
RATE="${2:-100}"
MAX_BYTES="${3:-268435456}"
SHARED="${SHARED:-../shared}"
build_pages_and_release "rewind bench"
BIN="${MISPDASH_BIN:-target/release/mispdash}"
WORK="$(mktemp -d)"
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill -9 $DPID 2>/dev/null; rm -rf "$WORK"' EXIT
RC="redis-cli -p $PORT"
PER_HOUR=$((RATE * 3600))
echo "rewind bench: generating one hour of the bench mix ($PER_HOUR messages)"
python3 "$SHARED/tools/gen_corpus.py" --seed 42 --count "$PER_HOUR" --mix bench --edges none -o "$WORK/hour.jsonl"
python3 bench/fill_buffer.py "$WORK/hour.jsonl" --sentinel >"$WORK/hour.resp" 2>/dev/null
cat >"$WORK/config.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HTTP
[RedisGlobal]
host = 127.0.0.1
port = $PORT
misp_instances = []
[mispdash]
rewind_hours = 24
rewind_max_bytes = $MAX_BYTES
CFG
export TZ=UTC NO_COLOR=1 MISPDASH_LOG=warn
T0=1795176000
echo "rewind bench: $HOURS simulated hour(s) at $RATE msg/s, rewind_max_bytes = $MAX_BYTES; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| hour | messages so far | entries | entry bytes (counter) | stream MEMORY USAGE | Redis used_memory | oldest entry | drain | dispatcher peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for h in $(seq 1 "$HOURS"); do
    now=$((T0 + h * 3600))
    $RC -n 3 --pipe <"$WORK/hour.resp" >/dev/null
    start=$(date +%s.%N)
    MISPDASH_FAKE_NOW=$now "$BIN" --config "$WORK/config.cfg" run --no-subscribers --no-server --no-managed-redis --no-demo 2>>"$WORK/run.log" &
    DPID=$!
    until [ "$($RC -n 3 llen bufferList)" = 0 ] && [ "$($RC -n 3 llen bufferList:processing)" = 0 ]; do sleep 0.2; done
    end=$(date +%s.%N)
    hwm=$(awk '/VmHWM/{print $2}' /proc/$DPID/status)
    kill $DPID; wait $DPID 2>/dev/null || true; DPID=
    $RC -n 3 del bufferList:dead >/dev/null
    len=$($RC -n 2 xlen MISPDASH_REWIND)
    bytes=$($RC -n 2 get MISPDASH_REWIND:bytes)
    usage=$($RC -n 2 memory usage MISPDASH_REWIND samples 0)
    used=$($RC info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
    oldest=$($RC -n 2 xrange MISPDASH_REWIND - + count 1 | head -1 | cut -d- -f1)
    python3 - "$h" "$((h * PER_HOUR))" "$len" "${bytes:-0}" "${usage:-0}" "$used" "${oldest:-0}" "$now" "$start" "$end" "$hwm" <<'PY'
import sys
h, total, n, b, u, used, oldest, now, s, e, hwm = sys.argv[1:]
mib = lambda x: f"{int(x) / 2**20:,.1f} MiB"
age = (int(now) * 1000 - int(oldest)) / 3600e3 if int(oldest) else 0
dt = float(e) - float(s)
print(f"| {h} | {int(total):,} | {int(n):,} | {mib(b)} | {mib(u)} | {mib(used)} | {age:.2f} h old | {dt:.1f} s ({int(total) // int(h) / dt:,.0f} msg/s) | {int(hwm) / 1024:.1f} MiB |")
PY
done
echo
# What reading the stream costs the server users run: a window (the page's slider) and the
# largest CSV export, with the server's peak RSS.
now=$((T0 + HOURS * 3600))
MISPDASH_FAKE_NOW=$now "$BIN" --config "$WORK/config.cfg" run --no-subscribers --no-managed-redis --no-demo 2>>"$WORK/run.log" &
DPID=$!
until curl -s "http://127.0.0.1:$HTTP/healthz" >/dev/null; do sleep 0.2; done
rss0=$(awk '/VmRSS/{print $2}' /proc/$DPID/status)
from=$((now - 1800))
w=$(curl -s -o "$WORK/window.json" -w '%{time_total}' "http://127.0.0.1:$HTTP/_mispdash/rewind?from=$from&to=$now")
c=$(curl -s -D "$WORK/csv.head" -o "$WORK/window.csv" -w '%{time_total}' "http://127.0.0.1:$HTTP/_mispdash/rewind.csv?from=$((now - 86400))&to=$now")
hwm=$(awk '/VmHWM/{print $2}' /proc/$DPID/status)
python3 - "$WORK/window.json" "$w" "$WORK/window.csv" "$c" "$WORK/csv.head" "$rss0" "$hwm" <<'PY'
import json, sys
wj, wt, csvp, ct, head, rss0, hwm = sys.argv[1:]
win = json.load(open(wj))
rows = sum(1 for _ in open(csvp, encoding="utf-8")) - 1
complete = [l.split(":", 1)[1].strip() for l in open(head) if l.lower().startswith("x-mispdash-complete")]
print(f"`mispdash run` (server on), RSS {int(rss0) / 1024:.1f} MiB at start:")
print(f"- window of the last 30 min (the slider): {len(win['rows'])} rows, {len(win['points'])} points, more={win['more']}, {float(wt) * 1000:.0f} ms")
print(f"- CSV export of the whole day: {rows:,} rows, complete={complete[0] if complete else '?'}, {float(ct):.1f} s")
print(f"- server peak RSS (VmHWM) after both: {int(hwm) / 1024:.1f} MiB")
PY
kill $DPID; wait $DPID 2>/dev/null || true; DPID=
