#!/usr/bin/env bash
# What `[RedisGlobal] wait_replicas = 1` costs the subscriber (not a timed test): a Redis master
# with one replica, `mispdash subscribe` pushing what a MISP stand-in (bench/soak_feed.py)
# publishes as fast as it can, for SECS (10) seconds after a 2-second start, once with
# wait_replicas = 0 and once with 1, PAIRS (3) times side by side. Prints, per run, messages
# the feed sent and frames the subscriber pushed per second, and per pair the ratio of the two
# push rates. When the subscriber keeps up with the feed in both runs, the cost is below what
# this feed can show, and the lines say so.
#   bench/wait_cost.sh     (MISPDASH_BIN, PAIRS, SECS)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
PAIRS="${PAIRS:-3}"
SECS="${SECS:-10}"
SHARED="${SHARED:-../shared}"
release_bin wait_cost
WORK="$(mktemp -d)"
PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
python3 "$SHARED/tools/gen_corpus.py" --seed 5 --count 20000 --mix bench --edges none -o "$WORK/corpus.jsonl"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# run W: prints "sent/s pushed/s" of one run with wait_replicas = W.
run() {
    local w=$1 pa pb zp
    pa=$(free_port); pb=$(free_port); zp=$(free_port)
    start_redis "$pa" "$WORK"; PIDS+=("$RPID")
    start_redis "$pb" "$WORK" --replicaof 127.0.0.1 "$pa"; PIDS+=("$RPID")
    until redis-cli -p "$pb" info replication | grep -q "master_link_status:up"; do sleep 0.1; done
    printf '[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nwait_replicas = %s\n' "$pa" "$w" >"$WORK/c.cfg"
    rm -f "$WORK/sent" "$WORK/pause"
    python3 bench/soak_feed.py --bind "tcp://127.0.0.1:$zp" --rate 1000000 --corpus "$WORK/corpus.jsonl" \
        --pause-file "$WORK/pause" --count-file "$WORK/sent" & PIDS+=($!)
    MISPDASH_LOG=warn "$BIN" --config "$WORK/c.cfg" subscribe -n bench -u "tcp://127.0.0.1:$zp" \
        --data-dir "$WORK/sub-$w" 2>"$WORK/sub.log" & PIDS+=($!)
    until [ "$(redis-cli -p "$pa" -n 3 llen bufferList)" -gt 0 ]; do sleep 0.05; done
    sleep 2
    local s0 p0 s1 p1
    s0=$(cat "$WORK/sent"); p0=$(redis-cli -p "$pa" -n 3 llen bufferList)
    sleep "$SECS"
    s1=$(cat "$WORK/sent"); p1=$(redis-cli -p "$pa" -n 3 llen bufferList)
    stop_all
    echo "$(( (s1 - s0) / SECS )) $(( (p1 - p0) / SECS ))"
}
for i in $(seq 1 "$PAIRS"); do
    read -r s0 p0 < <(run 0)
    read -r s1 p1 < <(run 1)
    echo "pair $i: wait_replicas=0: feed ~$s0 msg/s, pushed $p0 frames/s; wait_replicas=1: feed ~$s1 msg/s, pushed $p1 frames/s; ratio $(python3 -c "print(f'{$p1 / max($p0, 1) * 100:.0f} %')") (load $(cut -d' ' -f1 /proc/loadavg))"
done
