#!/usr/bin/env bash
# Access-control fan-out benchmark (not a test): SSE clients signed in as the users of several
# organisations on /_logs while a ZeroMQ feed of mixed distributions runs through the release
# `mispdash run` (subscriber, dispatcher, server), with [ACL] enabled off and on in paired runs.
# MISP cannot run here: bench/misp_standin.py stands in for the two API calls of a login.
#   bench/acl_fanout.sh [CLIENTS] [RATE] [SECONDS] [PAIRS]   (defaults 1000 clients, 100 msg/s,
#   60 s, 2 pairs); USERS=50 ORGS=10; MISPDASH_BIN=... to use another binary.
# Prints, per run: rows delivered against what MISP's rules allow each user, delivery latency
# (publisher send -> client read) p50/p99/max, and the server's CPU seconds and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-1000}"
RATE="${2:-100}"
SECONDS_RUN="${3:-60}"
PAIRS="${4:-2}"
USERS="${USERS:-50}"
ORGS="${ORGS:-10}"
BIN="${MISPDASH_BIN:-target/release/mispdash}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_pages_and_release acl_fanout
WORK="$(mktemp -d)"
RPORT=$(free_port)
MPORT=$(free_port)
ZPORT=$(free_port)
start_redis "$RPORT" "$WORK"
python3 bench/misp_standin.py --port "$MPORT" --users "$USERS" --orgs "$ORGS" &
MPID=$!
DPID=""
cleanup() {
    for p in $DPID $MPID $RPID; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
python3 bench/misp_standin.py --describe --users "$USERS" --orgs "$ORGS" >"$WORK/world.json"
cpu_of() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }

run_once() { # on|off
    local hport acl
    hport=$(free_port)
    acl=$([ "$1" = on ] && echo True || echo False)
    redis-cli -p "$RPORT" flushall >/dev/null
    cat >"$WORK/c.cfg" <<CFG
[Server]
host = 127.0.0.1
port = $hport
[RedisGlobal]
host = 127.0.0.1
port = $RPORT
misp_instances = [{"name": "misp1", "url": "http://127.0.0.1:$MPORT", "zmq": "tcp://127.0.0.1:$ZPORT"}]
[Auth]
auth_enabled = True
misp_fqdn = http://127.0.0.1:$MPORT
session_secret = bench-secret-$RANDOM$RANDOM-0123456789abcdef
[ACL]
enabled = $acl
[mispdash]
login_attempts_per_minute = 10000
max_connections_per_address = 1000
CFG
    NO_COLOR=1 MISPDASH_LOG=warn "$BIN" --config "$WORK/c.cfg" run --no-managed-redis --no-demo 2>"$WORK/run-$1.log" &
    DPID=$!
    until curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null; do sleep 0.1; done
    python3 bench/acl_login.py --port "$hport" --world "$WORK/world.json" >"$WORK/cookies.json"
    rm -f "$WORK/ready"
    python3 bench/http_sse_clients.py --port "$hport" --redis-port "$RPORT" -n "$CLIENTS" --procs 2 \
        --cookies "$WORK/cookies.json" --mark aclp- --events-file "$WORK/events.json" --sources 4 \
        --duration "$((SECONDS_RUN + 3))" --drain 5 --ready-file "$WORK/ready" >"$WORK/sse.json" &
    local cpid=$! c0 c1
    while [ ! -e "$WORK/ready" ]; do sleep 0.1; done
    c0=$(cpu_of "$DPID")
    python3 bench/acl_feed.py --bind "tcp://127.0.0.1:$ZPORT" --rate "$RATE" --duration "$SECONDS_RUN" \
        --facts "$WORK/facts.json" --world "$WORK/world.json"
    wait "$cpid"
    c1=$(cpu_of "$DPID")
    python3 - "$1" "$WORK" "$c0" "$c1" "$(awk '/VmHWM/{print $2}' "/proc/$DPID/status")" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
mode, work, c0, c1, hwm, load = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
world = json.load(open(work + "/world.json"))
facts = json.load(open(work + "/facts.json"))
sse = json.load(open(work + "/sse.json"))
per_session = json.load(open(work + "/events.json"))
groups = {int(g): set(o) for g, o in world["sharing_groups"].items()}

def sees(u, f):
    # MISP's conditions for another organisation's attribute (docs/acl.md): the event's
    # distribution and the attribute's own (5 inherits), sharing groups by membership.
    if mode == "off" or u["site_admin"] or u["org"] == f["owner"]:
        return True
    ev = f["ed"] in (1, 2, 3) or (f["ed"] == 4 and u["org"] in groups[f["eg"]])
    at = f["ad"] in (1, 2, 3, 5) or (f["ad"] == 4 and u["org"] in groups[f["ag"]])
    return ev and at

exact = 0
expected_total = 0
for i, u in enumerate(world["users"]):
    want = sum(sees(u, f) for f in facts)
    got = per_session.get(str(i), [])
    expected_total += want * len(got)
    exact += sum(g == want for g in got)
print("| ACL %s | %d/%d | %d of %d | %s | %s | %s | %.1f | %.1f | %s |" % (
    mode, sse["connected"], sse["clients"], exact, sse["connected"], sse["deliveries"],
    sse["latency_ms_p50"], sse["latency_ms_p99"], c1 - c0, hwm / 1024, load))
PY
    kill "$DPID"
    wait "$DPID" 2>/dev/null || true
    DPID=""
}

echo "# ACL fan-out ($(date -u +%FT%TZ), $(nproc) cores): $CLIENTS SSE clients of $USERS users in $ORGS organisations on /_logs, $RATE msg/s for ${SECONDS_RUN}s"
echo
echo "| run | clients connected | clients with exactly their rows | rows delivered | p50 ms | p99 ms | server CPU s | server peak RSS MiB | load before |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for _ in $(seq "$PAIRS"); do
    run_once off
    run_once on
done
