#!/usr/bin/env bash
# Soak (not a timed test): MINUTES (default 120) of what a deployment lives through, on loopback:
#   - a MISP stand-in (bench/soak_feed.py; MISP cannot run here) publishing the bench mix at
#     RATE (200) messages/s to `mispdash subscribe`, which feeds `mispdash run --no-subscribers`
#     (dispatcher and web server, the configuration users run, release build);
#   - CLIENTS (200) viewers of the pages' live stream connecting and leaving (bench/soak_clients.py);
#   - wrk on a mix of JSON routes, 5 s in every 30 s;
#   - a Redis restart (SHUTDOWN, AOF kept) at a third of the run and a subscriber restart (the
#     feed paused around it) at two thirds.
# Every SAMPLE seconds (60) the RSS of mispdash, the subscriber and redis-server (the least and
# the most of the per-second readings since the last sample) and Redis's used_memory are
# written to a CSV. At the end the feed stops, the buffer drains, and it reports:
# RSS growth after WARM seconds (600), messages sent against those applied, left in the buffer
# and processing lists and dead-lettered, and error answers outside the Redis outage (from its
# SHUTDOWN until 10 s after it answers again), and which families of Redis keys grew since the
# warm-up (bench/redis_families.sh; the original's `LOGIN_TIMESTAMP:<org>` keeps every login
# and never expires, so under a steady login load Redis grows by design). Exits non-zero when a message is lost, when an
# answer failed outside the outage, when the live streams did not deliver after the restarts, or
# (runs of 30 minutes or more) when RSS grew by 5 % or more. The rewind stream is bounded to
# REWIND_BYTES (32 MiB) rather than the default 256 MiB, which 200 msg/s fill in about 50
# minutes: the soak shows Redis flat once the bound is reached, within the warm-up.
#   bench/soak.sh [MINUTES]     (MISPDASH_BIN, RATE, CLIENTS, SAMPLE, WARM, OUT=<dir> to keep results)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MINUTES="${1:-120}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-200}"
SAMPLE="${SAMPLE:-60}"
WARM="${WARM:-600}"
SHARED="${SHARED:-../shared}"
release_bin soak
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh test installs it" >&2; exit 1; }
SECS=$(( MINUTES * 60 ))
WORK="$(mktemp -d)"
OUT="${OUT:-$WORK}"
mkdir -p "$OUT"
RPORT=$(free_port); HPORT=$(free_port); ZPORT=$(free_port)
RPID=""; MPID=""; SUBPID=""; FPID=""; CPID=""
cleanup() {
    for p in $CPID $FPID $SUBPID $MPID; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    [ -z "$RPID" ] || kill "$RPID" 2>/dev/null || true
    [ "$OUT" != "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
RC="redis-cli -p $RPORT"
# With its AOF, so that the restart in the middle keeps the data.
redis_up() { start_redis "$RPORT" "$WORK" --appendonly yes --appendfsync everysec; }
# Messages applied, waiting in the buffer, or taken and not yet applied.
accounted() {
    local a b p
    a=$($RC -n 3 hget MISPDASH_DISPATCH messages 2>/dev/null); b=$($RC -n 3 llen bufferList 2>/dev/null)
    p=$($RC -n 3 llen bufferList:processing 2>/dev/null)
    echo $(( ${a:-0} + ${b:-0} + ${p:-0} ))
}
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
redis_up
MMDB="$(geolite_mmdb)"
cat >"$WORK/config.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $HPORT
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_instances = [{"name": "soak", "url": "http://127.0.0.1", "zmq": "tcp://127.0.0.1:$ZPORT"}]
[RedisMap]
pathMaxMindDB = $MMDB
path_countrycode_to_coord_JSON = $SHARED/data/country_code_lat_long.json
[mispdash]
rewind_max_bytes = ${REWIND_BYTES:-33554432}
CFG
echo "soak: $MINUTES min, $RATE msg/s, $CLIENTS stream clients; results in $OUT"
python3 "$SHARED/tools/gen_corpus.py" --seed 7 --count 20000 --mix bench --edges none -o "$WORK/corpus.jsonl"
touch "$WORK/pause"
python3 bench/soak_feed.py --bind "tcp://127.0.0.1:$ZPORT" --rate "$RATE" --corpus "$WORK/corpus.jsonl" \
    --pause-file "$WORK/pause" --count-file "$WORK/sent" &
FPID=$!
MISPDASH_LOG=warn "$BIN" --config "$WORK/config.cfg" run --no-subscribers --no-managed-redis 2>"$OUT/mispdash.log" &
MPID=$!
start_subscriber() {
    MISPDASH_LOG=warn "$BIN" --config "$WORK/config.cfg" subscribe -n soak -u "tcp://127.0.0.1:$ZPORT" \
        --data-dir "$WORK/sub" 2>>"$OUT/subscriber.log" &
    SUBPID=$!
}
start_subscriber
until curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null; do sleep 0.1; done
rm -f "$WORK/pause"   # the feed waits for the subscriber's ZeroMQ subscription itself
T0=$(date +%s)
python3 bench/soak_clients.py --port "$HPORT" --clients "$CLIENTS" --seconds "$SECS" \
    --min-stay "$(( SECS < 600 ? 5 : 20 ))" --max-stay "$(( SECS < 600 ? 20 : 120 ))" >"$OUT/clients.json" &
CPID=$!

N=1795176000
NOW=$(date +%s)
cat >"$WORK/mix.lua" <<LUA
paths = {"/_logs", "/_maps", "/_getTopCoord", "/_getHitMap", "/_getLastContributors",
  "/_getTopContributor", "/_getCategPerContrib", "/_getLatestAwards", "/_getUserLogins",
  "/_getTrendingEvents?dateS=$((NOW - 604800))&dateE=$NOW", "/_getTrendingTags?dateS=$((NOW - 604800))&dateE=$NOW",
  "/_getTypeaheadData", "/status", "/healthz"}
i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept"] = "application/json"})
end
LUA
echo "t,mispdash_kib,subscriber_kib,redis_kib,redis_used_memory,sent,applied,buffer,mispdash_max_kib,subscriber_max_kib,redis_max_kib" >"$OUT/rss.csv"
# Each process's RSS is read every second; a sample holds the least and the most seen since the
# last one. The least is what stays resident (mispdash gives freed pages back every 30 s, so
# its RSS saw-tooths between a floor and the last burst's working set); growth is measured on
# it, and the most is reported beside it.
LO=(0 0 0); HI=(0 0 0)
track() {
    local i=0 v
    for p in "$MPID" "$SUBPID" "$RPID"; do
        v=$(rss "$p")
        if [ "${v:-0}" -gt 0 ]; then
            { [ "${LO[$i]}" -eq 0 ] || [ "$v" -lt "${LO[$i]}" ]; } && LO[$i]=$v
            [ "$v" -gt "${HI[$i]}" ] && HI[$i]=$v
        fi
        i=$(( i + 1 ))
    done
}
: >"$OUT/wrk.tsv"
OUT_START=0; OUT_END=0
redis_restarted=""; sub_restarted=""
next_sample=0; next_wrk=10
while :; do
    t=$(( $(date +%s) - T0 ))
    [ "$t" -lt "$SECS" ] || break
    if [ -z "$redis_restarted" ] && [ "$t" -ge $(( SECS / 3 )) ]; then
        echo "soak: t=${t}s Redis restart (SHUTDOWN, AOF kept)"
        OUT_START=$(date +%s)
        $RC shutdown >/dev/null 2>&1 || true
        wait "$RPID" 2>/dev/null || true
        sleep 3
        redis_up
        OUT_END=$(( $(date +%s) + 10 ))
        redis_restarted=1
    fi
    if [ -z "$sub_restarted" ] && [ "$t" -ge $(( 2 * SECS / 3 )) ]; then
        echo "soak: t=${t}s subscriber restart (feed paused around it)"
        echo resubscribe >"$WORK/pause"; sleep 2
        # What was sent before the restart is accounted for before it: a loss is then placed
        # before (Redis restart included) or after this point.
        for _ in $(seq 1 60); do
            acc=$(accounted)
            [ "$acc" -ge "$(cat "$WORK/sent")" ] && break
            sleep 0.5
        done
        echo "soak: before the subscriber restart: sent $(cat "$WORK/sent"), accounted for $acc"
        kill -TERM "$SUBPID"; wait "$SUBPID" 2>/dev/null || true
        start_subscriber
        rm -f "$WORK/pause"
        sub_restarted=1
    fi
    if [ "$t" -ge "$next_sample" ]; then
        used=$($RC info memory 2>/dev/null | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
        applied=$($RC -n 3 hget MISPDASH_DISPATCH messages 2>/dev/null || echo)
        buffer=$($RC -n 3 llen bufferList 2>/dev/null || echo)
        track
        echo "$t,${LO[0]},${LO[1]},${LO[2]},${used:-},$(cat "$WORK/sent" 2>/dev/null || echo 0),${applied:-},${buffer:-},${HI[0]},${HI[1]},${HI[2]}" >>"$OUT/rss.csv"
        LO=(0 0 0); HI=(0 0 0)
        next_sample=$(( next_sample + SAMPLE ))
        # Redis's keys by family once warm, to attribute its growth at the end.
        if [ "$t" -ge "$WARM" ] && [ ! -e "$OUT/keys_warm.tsv" ]; then
            bench/redis_families.sh "$RPORT" >"$OUT/keys_warm.tsv" 2>/dev/null || rm -f "$OUT/keys_warm.tsv"
        fi
    fi
    if [ "$t" -ge "$next_wrk" ] && [ $(( SECS - t )) -gt 8 ]; then
        start=$(date +%s)
        out=$(wrk -t1 -c2 -d5s --timeout 5s -s "$WORK/mix.lua" "http://127.0.0.1:$HPORT" 2>&1 || true)
        reqs=$(echo "$out" | awk '/requests in/{print $1}')
        bad=$(echo "$out" | awk '/Non-2xx/{print $NF}')
        errs=$(echo "$out" | awk '/Socket errors/{print}' | tr '\t' ' ')
        printf '%s\t%s\t%s\t%s\t%s\n' "$start" "$(date +%s)" "${reqs:-0}" "${bad:-0}" "${errs:-}" >>"$OUT/wrk.tsv"
        next_wrk=$(( next_wrk + 30 ))
    fi
    track
    sleep 1
done

echo "soak: feed stops; waiting for the clients and the drain"
touch "$WORK/pause"
wait "$CPID" 2>/dev/null || true; CPID=""
sleep 2
for _ in $(seq 1 240); do
    b=$($RC -n 3 llen bufferList); p=$($RC -n 3 llen bufferList:processing)
    [ "$b" = 0 ] && [ "$p" = 0 ] && break
    sleep 0.5
done
kill -TERM "$FPID"; wait "$FPID" 2>/dev/null || true; FPID=""
bench/redis_families.sh "$RPORT" >"$OUT/keys_end.tsv" 2>/dev/null || true
python3 - "$OUT" "$WARM" "$MINUTES" "$OUT_START" "$OUT_END" "$(cat "$WORK/sent")" \
    "$($RC -n 3 hget MISPDASH_DISPATCH messages)" "$($RC -n 3 llen bufferList)" \
    "$($RC -n 3 llen bufferList:processing)" "$($RC -n 3 llen bufferList:dead)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import csv, json, sys
out, warm, minutes, o0, o1, sent, applied, buffer, processing, dead, load = sys.argv[1:]
warm, minutes, o0, o1 = int(warm), int(minutes), int(o0), int(o1)
sent, applied = int(sent), int(applied or 0)
buffer, processing, dead = int(buffer), int(processing), int(dead)
failures = []
rows = list(csv.DictReader(open(f"{out}/rss.csv")))
print(f"machine: load average {load}")
print(f"samples: {len(rows)} (rss.csv)")
growth = {}
for col in ["mispdash_kib", "subscriber_kib", "redis_kib", "redis_used_memory"]:
    vals = [(int(r["t"]), int(r[col])) for r in rows if r[col] not in ("", "0")]
    after = [v for t, v in vals if t >= warm]
    if len(after) >= 2:
        g = 100.0 * (after[-1] - after[0]) / after[0]
        growth[col] = g
        unit = "B" if col == "redis_used_memory" else "KiB"
        print(f"{col}: at {warm}s {after[0]} {unit}, at the end {after[-1]} {unit}, max {max(after)}: growth {g:+.1f} %")
    else:
        print(f"{col}: too few samples after {warm}s for a growth figure")
for col in ["mispdash_max_kib", "redis_max_kib"]:
    after = [int(r[col]) for r in rows if int(r["t"]) >= warm and r.get(col) not in (None, "", "0")]
    if len(after) >= 2:
        print(f"{col} (the most in each interval; not judged): at {warm}s {after[0]} KiB, at the end {after[-1]} KiB, "
              f"max {max(after)}: growth {100.0 * (after[-1] - after[0]) / after[0]:+.1f} %")
try:
    # What grew in Redis, by family of keys (bench/redis_families.sh, once warm and at the end).
    def families(name):
        return {(d, f): int(b) for d, f, b, _ in (l.rstrip("\n").split("\t") for l in open(f"{out}/{name}") if l.strip())}
    k0, k1 = families("keys_warm.tsv"), families("keys_end.tsv")
    diffs = sorted(((k1.get(k, 0) - k0.get(k, 0), k) for k in set(k0) | set(k1)), reverse=True)
    print("redis keys, growth since warm by family (MEMORY USAGE): " + ", ".join(
        f"{f} {d / 1e6:+.2f} MB" for d, (_, f) in diffs[:6] if d))
except (OSError, ValueError) as e:
    print(f"redis keys: no attribution ({e})")
lost = sent - applied - buffer - processing
print(f"messages: sent {sent}, applied {applied}, left in the buffer {buffer}, in processing {processing}, dead letters {dead}: lost {lost}")
if lost > 0:
    failures.append(f"{lost} message(s) lost")
outage = lambda t: o0 and o0 <= t <= o1
bad_in, bad_out, reqs = 0, 0, 0
for line in open(f"{out}/wrk.tsv"):
    s, e, n, bad, errs = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
    reqs += int(n or 0)
    overlapped = o0 and int(s) <= o1 and int(e) >= o0
    if overlapped:
        bad_in += int(bad or 0)
    else:
        bad_out += int(bad or 0)
        if errs:
            failures.append(f"wrk socket errors outside the outage: {errs}")
print(f"routes (wrk bursts): {reqs} requests; non-2xx {bad_out} outside the Redis outage, {bad_in} in bursts overlapping it")
if bad_out:
    failures.append(f"{bad_out} error answer(s) from the routes outside the outage")
c = json.load(open(f"{out}/clients.json"))
sse_bad_out = [b for b in c["bad_answers"] if not outage(b[0])]
print(f"streams: {c['connections']} connections, {c['live_events']} live and {c['map_events']} map events read; "
      f"non-200 answers {len(c['bad_answers'])} ({len(sse_bad_out)} outside the outage); connect errors {len(c['connect_errors'])}; "
      f"read errors {len(c['read_errors'])}; ended by the server {len(c['ended_by_server'])}")
if sse_bad_out or c["connect_errors"]:
    failures.append("stream answers failed outside the outage")
after = sum(n for b, n in c["live_by_10s"].items() if int(b) > max(o1, 0))
print(f"live events read after the Redis outage: {after}")
if after == 0:
    failures.append("the streams delivered no live event after the Redis restart")
if minutes >= 30:
    for col, g in growth.items():
        if g >= 5:
            failures.append(f"{col} grew {g:.1f} % after the first {warm} s")
print("soak: " + ("FAILED: " + "; ".join(failures) if failures else "passed"))
sys.exit(1 if failures else 0)
PY
