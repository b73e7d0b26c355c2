#!/usr/bin/env bash
# Failover drill (not a timed test; cli/tests/failover.rs runs it and checks its summary), on
# loopback, with the Debian packages' programs:
#   - a Redis master and a replica (password-protected), watched by three redis-sentinels
#     (quorum 2, down-after 1 s);
#   - `mispdash subscribe` fed by a MISP stand-in (bench/soak_feed.py; MISP cannot run here) at
#     RATE (200) messages/s;
#   - two web nodes, `mispdash run --no-subscribers` each (one dispatcher active, the other
#     standing by on the lease), behind HAProxy;
#   - through HAProxy, a reader of the live page's stream and a prober of a JSON route every
#     100 ms (bench/failover_watch.py).
# After WARM (15) seconds the master is killed (SIGKILL). The drill measures how long the
# Sentinels take to promote the replica, when the dashboard answers again through HAProxy, when
# the live stream delivers again, and, once the feed stops and the buffer drains, the messages
# lost: sent against applied plus those left in the buffer and processing lists, and whether
# each node's /status reads Redis, the feed and the buffer again. With
# WAIT_REPLICAS=1 (`[RedisGlobal] wait_replicas`) the subscriber keeps each batch until a replica
# has it; the killed master then comes back (as the Sentinels' replica of the new one) after
# RESTART (5) seconds, since until then no replica is left to acknowledge.
# Prints a summary and its JSON (last line); exits non-zero when the dashboard did not answer
# within the failover time plus 5 s, when the stream did not deliver after the failover, when a
# node's /status did not read Redis after it, or when a message was lost with WAIT_REPLICAS set.
#   bench/failover.sh     (MISPDASH_BIN, RATE, WARM, AFTER (20 s after the failover),
#                          WAIT_REPLICAS (0), RESTART, OUT=<dir> to keep logs)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RATE="${RATE:-200}"
WARM="${WARM:-15}"
AFTER="${AFTER:-20}"
RESTART="${RESTART:-5}"
WAIT_REPLICAS="${WAIT_REPLICAS:-0}"
SHARED="${SHARED:-../shared}"
release_bin failover
for p in redis-sentinel haproxy; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] ||
        { echo "$p is missing: scripts/setup.sh test installs it" >&2; exit 1; }
done
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
WORK="$(mktemp -d)"
OUT="${OUT:-$WORK}"
mkdir -p "$OUT"
PW="drill-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
PA=$(free_port); PB=$(free_port); S1=$(free_port); S2=$(free_port); S3=$(free_port)
HA=$(free_port); HB=$(free_port); HP=$(free_port); ZPORT=$(free_port)
PIDS=()
cleanup() {
    touch "$WORK/stop" "$WORK/pause"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ "$OUT" != "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "failover: t=$(( $(date +%s) - ${T0:-$(date +%s)} ))s $*"; }

# A data node: no persistence (the replica holds the copy), the password for clients and for
# its own replication.
data_node() {
    local port=$1
    shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
        --requirepass "$PW" --masterauth "$PW" "$@" >"$OUT/redis-$port.log" 2>&1 &
    PIDS+=($!)
    until redis-cli -p "$port" -a "$PW" --no-auth-warning ping >/dev/null 2>&1; do sleep 0.05; done
}
data_node "$PA"
MASTER_PID=${PIDS[-1]}
data_node "$PB" --replicaof 127.0.0.1 "$PA"
until redis-cli -p "$PB" -a "$PW" --no-auth-warning info replication | grep -q "master_link_status:up"; do sleep 0.1; done
for s in $S1 $S2 $S3; do
    cat >"$WORK/sentinel-$s.conf" <<CONF
port $s
bind 127.0.0.1
dir $WORK
sentinel monitor dash 127.0.0.1 $PA 2
sentinel auth-pass dash $PW
sentinel down-after-milliseconds dash 1000
sentinel failover-timeout dash 10000
CONF
    redis-sentinel "$WORK/sentinel-$s.conf" >"$OUT/sentinel-$s.log" 2>&1 &
    PIDS+=($!)
done
for s in $S1 $S2 $S3; do
    until [ "$(redis-cli -p "$s" sentinel get-master-addr-by-name dash 2>/dev/null | tail -1)" = "$PA" ]; do sleep 0.1; done
done
# Each Sentinel knows the other two and the replica before the drill starts.
for s in $S1 $S2 $S3; do
    until redis-cli -p "$s" sentinel master dash | tr -d '\r' | grep -A1 -x 'num-other-sentinels' | tail -1 | grep -qx 2 &&
        redis-cli -p "$s" sentinel master dash | tr -d '\r' | grep -A1 -x 'num-slaves' | tail -1 | grep -qx 1; do
        sleep 0.2
    done
done

MMDB="$(geolite_mmdb)"
node_config() {
    cat <<CFG
[Server]
host = 127.0.0.1
port = $1
[RedisGlobal]
sentinels = 127.0.0.1:$S1, 127.0.0.1:$S2, 127.0.0.1:$S3
sentinel_master = dash
password = $PW
wait_replicas = $WAIT_REPLICAS
misp_instances = [{"name": "drill", "url": "http://127.0.0.1", "zmq": "tcp://127.0.0.1:$ZPORT"}]
[RedisMap]
pathMaxMindDB = $MMDB
path_countrycode_to_coord_JSON = $SHARED/data/country_code_lat_long.json
CFG
}
node_config "$HA" >"$WORK/a.cfg"
node_config "$HB" >"$WORK/b.cfg"
python3 "$SHARED/tools/gen_corpus.py" --seed 11 --count 20000 --mix bench --edges none -o "$WORK/corpus.jsonl"
touch "$WORK/pause"
python3 bench/soak_feed.py --bind "tcp://127.0.0.1:$ZPORT" --rate "$RATE" --corpus "$WORK/corpus.jsonl" \
    --pause-file "$WORK/pause" --count-file "$WORK/sent" &
PIDS+=($!)
FPID=$!
for n in a b; do
    MISPDASH_LOG=info "$BIN" --config "$WORK/$n.cfg" run --no-subscribers --no-managed-redis \
        --data-dir "$WORK/data-$n" 2>"$OUT/node-$n.log" &
    PIDS+=($!)
done
MISPDASH_LOG=info "$BIN" --config "$WORK/a.cfg" subscribe -n drill -u "tcp://127.0.0.1:$ZPORT" \
    --data-dir "$WORK/sub" 2>"$OUT/subscriber.log" &
PIDS+=($!)
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend dashboard
    bind 127.0.0.1:$HP
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    server a 127.0.0.1:$HA check inter 500 fall 2 rise 1
    server b 127.0.0.1:$HB check inter 500 fall 2 rise 1
CFG
"$HAPROXY" -f "$WORK/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
PIDS+=($!)
for p in $HA $HB $HP; do
    until curl -sf "http://127.0.0.1:$p/healthz" >/dev/null; do sleep 0.1; done
done
rm -f "$WORK/pause"   # the feed waits for the subscriber's ZeroMQ subscription itself
python3 bench/failover_watch.py --port "$HP" --stop-file "$WORK/stop" >"$OUT/watch.json" &
PIDS+=($!)
WPID=$!
T0=$(date +%s)
say "master 127.0.0.1:$PA, replica 127.0.0.1:$PB, Sentinels $S1 $S2 $S3, nodes $HA $HB behind HAProxy $HP; $RATE msg/s, wait_replicas=$WAIT_REPLICAS"
sleep "$WARM"
# An admin had /status open before: each node's list-database connection exists when the
# master dies.
for p in $HA $HB; do curl -s -m 5 -o /dev/null -H 'Accept: application/json' "http://127.0.0.1:$p/status"; done
RC_B="redis-cli -p $PB -a $PW --no-auth-warning"
KILLED=$(python3 -c 'import time;print(time.time())')
kill -9 "$MASTER_PID"
say "master killed (SIGKILL)"
until [ "$(redis-cli -p "$S1" sentinel get-master-addr-by-name dash 2>/dev/null | tail -1)" = "$PB" ]; do sleep 0.05; done
PROMOTED=$(python3 -c 'import time;print(time.time())')
say "the Sentinels name 127.0.0.1:$PB master ($(python3 -c "print(round($PROMOTED - $KILLED, 2))") s)"
if [ "$WAIT_REPLICAS" -gt 0 ]; then
    sleep "$RESTART"
    data_node "$PA"
    say "the old master is back; the Sentinels make it a replica of 127.0.0.1:$PB"
fi
sleep "$AFTER"
say "feed stops; waiting for the drain"
touch "$WORK/pause"
sleep 2
for _ in $(seq 1 240); do
    b=$($RC_B -n 3 llen bufferList); p=$($RC_B -n 3 llen bufferList:processing)
    [ "$b" = 0 ] && [ "$p" = 0 ] && break
    sleep 0.5
done
sleep 1
# Each node's /status (what an admin reads) after the failover: Redis reachable, the feed and
# the buffer read (from the list database, on its own shared connection); a second ask allowed.
status_ok=0
for p in $HA $HB; do
    for _ in 1 2 3; do
        if curl -s -m 5 -H 'Accept: application/json' "http://127.0.0.1:$p/status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
ok = s["redis"]["reachable"] and "feeds_error" not in s and "buffer_error" not in s \
    and any(f["name"] == "drill" for f in s.get("feeds", []))
sys.exit(0 if ok else 1)'; then
            status_ok=$((status_ok + 1))
            break
        fi
        sleep 1
    done
done
touch "$WORK/stop"
wait "$WPID" 2>/dev/null || true
kill -TERM "$FPID"; wait "$FPID" 2>/dev/null || true
python3 - "$OUT/watch.json" "$KILLED" "$PROMOTED" "$(cat "$WORK/sent")" \
    "$($RC_B -n 3 hget MISPDASH_DISPATCH messages)" "$($RC_B -n 3 llen bufferList)" \
    "$($RC_B -n 3 llen bufferList:processing)" "$($RC_B -n 3 llen bufferList:dead)" \
    "$WAIT_REPLICAS" "$RATE" "$(cut -d' ' -f1-3 /proc/loadavg)" "$status_ok" <<'PY'
import json, sys
watch, killed, promoted, sent, applied, buffer, processing, dead, wait, rate, load, status_ok = sys.argv[1:]
w = json.load(open(watch))
killed, promoted = float(killed), float(promoted)
sent, applied, buffer, processing, dead = (int(x or 0) for x in (sent, applied, buffer, processing, dead))
failures = []
failover = promoted - killed
# The dashboard answers again: the first probe after the kill from which every probe is a 200.
probes = [(t, s) for t, s in w["probes"] if t >= killed]
bad = [t for t, s in probes if s != 200]
answered = None
if probes and probes[-1][1] == 200:
    later = [t for t, s in probes if s == 200 and (not bad or t > bad[-1])]
    answered = later[0] - killed if later else None
failed_probes = len(bad)
live_after = [t for t in w["live"] if t > promoted]
stream_back = (live_after[0] - killed) if live_after else None
lost = sent - applied - buffer - processing
summary = {
    "rate": int(rate), "wait_replicas": int(wait), "load": load,
    "failover_s": round(failover, 2),
    "answering_again_s": None if answered is None else round(answered, 2),
    "failed_probes": failed_probes, "probes": len(probes),
    "stream_delivering_again_s": None if stream_back is None else round(stream_back, 2),
    "stream_connections": len(w["connections"]), "live_events": len(w["live"]),
    "sent": sent, "applied": applied, "buffer": buffer, "processing": processing,
    "dead_letters": dead, "lost": lost, "nodes_status_ok": int(status_ok),
}
print(f"machine: load average {load}")
print(f"failover: the Sentinels promoted the replica {failover:.2f} s after the kill")
print(f"routes: {failed_probes} of {len(probes)} probes failed after the kill; answering again "
      f"{'never' if answered is None else f'{answered:.2f} s'} after it")
print(f"live stream: {len(w['connections'])} connection(s), {len(w['live'])} live events; delivering again "
      f"{'never' if stream_back is None else f'{stream_back:.2f} s'} after the kill")
print(f"messages: sent {sent}, applied {applied}, left in the buffer {buffer}, in processing {processing}, "
      f"dead letters {dead}: lost {lost}")
if answered is None or answered > failover + 5:
    failures.append("the dashboard did not answer within the failover time plus 5 s")
if stream_back is None:
    failures.append("the live stream delivered nothing after the failover")
if lost > 0 and int(wait) > 0:
    failures.append(f"{lost} message(s) lost with wait_replicas={wait}")
print(f"/status after the failover: {status_ok} of 2 nodes read Redis, the feed and the buffer")
if int(status_ok) != 2:
    failures.append("a node's /status did not read Redis after the failover")
if lost < 0:
    failures.append(f"{-lost} message(s) counted twice")
print("failover: " + ("FAILED: " + "; ".join(failures) if failures else "passed"))
summary["failures"] = failures
print(json.dumps(summary))
sys.exit(1 if failures else 0)
PY
