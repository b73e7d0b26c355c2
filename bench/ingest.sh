#!/usr/bin/env bash
# Ingest benchmark (not a test): drains a pre-filled buffer of N messages (default 50,000,
# gen_corpus.py --mix bench --edges none) with `mispdash run --no-subscribers`: in PAIRS
# (default 2) pairs of runs close together, the configuration users run (web server on, no
# client connected) beside the stripped one (`--no-server`), then the stripped one without
# gamification. Reports messages/s, peak RSS, Redis commands per message, the load average and
# Redis's own pipelined ceiling before and after. Method as ../shared/corpus/original-baseline.md.
#   bench/ingest.sh [N]          (MISPDASH_BIN to use another binary, PAIRS=n)
# With BASELINE_BIN=<an earlier build>, each pair is that build and this one, both as users run
# them (web server on), for a before/after comparison in runs close together.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N="${1:-50000}"
SHARED="${SHARED:-../shared}"
release_bin ingest
WORK="$(mktemp -d)"
PAIRS="${PAIRS:-2}"
PORT=$(free_port)
SPORT=$(free_port)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill -9 $DPID 2>/dev/null; rm -rf "$WORK"' EXIT
RC="redis-cli -p $PORT"
until $RC ping >/dev/null 2>&1; do sleep 0.05; done
python3 "$SHARED/tools/gen_corpus.py" --seed 42 --count "$N" --mix bench --edges none -o "$WORK/bench.jsonl"
cat >"$WORK/config.cfg" <<CFG
[RedisGlobal]
host = 127.0.0.1
port = $PORT
misp_instances = []
[Server]
host = 127.0.0.1
port = $SPORT
[RedisMap]
pathMaxMindDB = $(geolite_mmdb)
CFG
ceiling() {
    echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg); Redis pipelined ceiling (redis-benchmark -P 16 -t set,zadd -n 500000 -q):"
    redis-benchmark -p "$PORT" -P 16 -t set,zadd -n 500000 -q 2>/dev/null | tr '\r' '\n' | grep -v '^$' | tail -2
}

one_run() { # $1: label, rest: extra flags
    local label="$1"; shift
    $RC flushall >/dev/null
    python3 bench/fill_buffer.py "$WORK/bench.jsonl" --sentinel 2>/dev/null | $RC -n 3 --pipe >/dev/null
    local total; total=$($RC -n 3 llen bufferList)
    $RC config resetstat >/dev/null
    local rcpu0; rcpu0=$(awk '{print $14+$15}' /proc/$RPID/stat)
    # Timing as the baseline's method: a watcher subscribed before the consumer starts (see
    # drain_watch.py); it is one long-lived process, so polling costs the measured cores nothing.
    coproc WATCH { python3 bench/drain_watch.py "$PORT" "$total"; }
    local ready; read -r ready <&"${WATCH[0]}"
    "${RUN_BIN:-$BIN}" --config "$WORK/config.cfg" run --no-subscribers --no-managed-redis "$@" 2>"$WORK/run.log" &
    DPID=$!
    local t0 t1; read -r t0 t1 <&"${WATCH[0]}"
    local hwm; hwm=$(awk '/VmHWM/{print $2}' /proc/$DPID/status)
    local cpu; cpu=$(awk '{print $14+$15}' /proc/$DPID/stat)
    local rcpu1; rcpu1=$(awk '{print $14+$15}' /proc/$RPID/stat)
    kill $DPID; wait $DPID 2>/dev/null || true; DPID=
    local cmds; cmds=$($RC info commandstats | python3 -c '
import sys
skip={"llen","hget","ping","info","config","select","flushall","subscribe"}
n=0
for l in sys.stdin:
    if l.startswith("cmdstat_"):
        name=l.split(":")[0][8:].split("|")[0]
        if name not in skip:
            n+=int(l.split("calls=")[1].split(",")[0])
print(n)')
    [ -z "${COMMANDS:-}" ] || $RC info commandstats | awk -F'[:=,]' -v t="$total" '/^cmdstat_/{printf "  %s %.2f/msg\n", substr($1,9), $3/t}' | sort -k2 -rn | head -14 >&2
    python3 - "$label" "$total" "$t0" "$t1" "$hwm" "$cpu" "$cmds" "$rcpu0" "$rcpu1" <<'PY'
import sys, os
label,total,t0,t1,hwm,cpu,cmds,r0,r1=sys.argv[1:]
total=int(total); dt=float(t1)-float(t0); hz=os.sysconf("SC_CLK_TCK")
print(f"| {label} | {total} | {dt:.2f} s | {total/dt:,.0f} msg/s | {int(hwm)/1024:.1f} MiB | {int(cpu)/hz:.1f} s | {(int(r1)-int(r0))/hz:.1f} s | {int(cmds)/total:.2f} |")
PY
}

ceiling
echo
echo "| run | messages | drain time | throughput | peak RSS (VmHWM) | mispdash CPU | redis CPU | Redis commands/message |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
if [ -n "${BASELINE_BIN:-}" ]; then
    for i in $(seq 1 "$PAIRS"); do
        RUN_BIN="$BASELINE_BIN" one_run "baseline ($BASELINE_BIN), pair $i"
        one_run "this build ($BIN), pair $i"
    done
else
    for i in $(seq 1 "$PAIRS"); do
        one_run "mispdash run (web server on, no client), pair $i"
        one_run "mispdash run --no-server, pair $i" --no-server
    done
    one_run "--no-server, without gamification" --no-server --no-gamification
fi
echo
ceiling
