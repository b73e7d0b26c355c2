#!/usr/bin/env bash
# Pages left open for REFRESHES refreshes (default 180: 30 minutes at ?refresh=10, a week of
# hourly ones), as on a wall screen (not a test): the release `mispdash run` (its server on) on
# seed2's keyspace, the live page fed RATE rows and map points a second (default 10), every
# page in its own tab of one headless Chromium. Reports each page's DOM nodes, event listeners
# and JS heap (after a forced garbage collection) every SAMPLE refreshes, and the change from
# the 2nd refresh to the last.
#   bench/ui_memory.sh        REFRESHES=60 MODE=click bench/ui_memory.sh
# MODE=timer (default) waits for each page's countdown; MODE=click presses "Refresh now".
# PAGES="geo trendings" measures some of live, geo, trendings, contrib, users, status.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${MISPDASH_BIN:-target/release/mispdash}"
REFRESHES="${REFRESHES:-180}"
SAMPLE="${SAMPLE:-20}"
RATE="${RATE:-10}"
MODE="${MODE:-timer}"
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_pages_and_release ui_memory
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill $DPID 2>/dev/null; [ -n "${FEED:-}" ] && kill $FEED 2>/dev/null; rm -rf "$WORK"' EXIT
start_seed2_dashboard "$BIN" ../shared/corpus/seed2.jsonl "$PORT" "$HTTP" "$WORK"
SECONDS_ALL=$((REFRESHES * 12 + 120))
python3 - "$PORT" "$RATE" "$SECONDS_ALL" <<'PY' &
import json, socket, sys, time
port, rate, duration = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in (y.encode() for y in a)))
end, i = time.time() + duration, 0
while time.time() < end:
    t0 = time.time()
    for _ in range(rate):
        i += 1
        log = {"Attribute": {"timestamp": str(1795176000 + i), "category": "Network activity", "type": "ip-dst",
                             "value": f"198.51.{i % 256}.{i // 256 % 256}", "comment": f"memory {i}"}, "Event": {"id": str(i % 500)}}
        cmd("PUBLISH", "1", json.dumps({"name": "Attribute", "log": json.dumps(log), "zmqName": "misp1"}))
        cmd("PUBLISH", "PicToDisplay", json.dumps({"coord": {"lat": (i % 120) - 60, "lon": (i % 340) - 170}, "categ": "Network activity",
            "value": f"v{i}", "country": "X", "specifName": "", "cityName": "", "regionCode": "US"}))
    s.recv(1 << 20)
    time.sleep(max(0, 1 - (time.time() - t0)))
PY
FEED=$!
sleep 40 # the live page starts full: 300 rows, 100 points
ORG="$(curl -s "http://127.0.0.1:$HTTP/_getTopContributor" -H 'Accept: application/json' | python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote_plus(json.load(sys.stdin)[1]["org"]))')"
echo "== $REFRESHES refreshes ($MODE), every page in its own tab; live page fed $RATE rows and points a second"
ARGS=()
for p in ${PAGES:-live geo trendings contrib users status}; do
    case "$p" in
    live) ARGS+=(--page "/") ;;
    geo) ARGS+=(--page "/geo?from=2026-11-19&to=2026-11-20&lat=51.5&lon=-0.1&km=12.3&country=GB&refresh=10") ;;
    trendings) ARGS+=(--page "/trendings?from=2026-11-13&to=2026-11-20&refresh=10") ;;
    contrib) ARGS+=(--page "/contrib?org=$ORG&refresh=10") ;;
    users) ARGS+=(--page "/users?date=2026-11-20&refresh=10") ;;
    status) ARGS+=(--page "/status") ;;
    *) echo "unknown page $p" >&2; exit 2 ;;
    esac
done
node core/web/e2e/memory.mjs --base "http://127.0.0.1:$HTTP" --refreshes "$REFRESHES" --mode "$MODE" --sample-every "$SAMPLE" \
    "${ARGS[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%-12s %8s %7s %9s %9s" % ("page", "refresh", "nodes", "listeners", "heap MiB"))
for p in r["pages"]:
    name = p["path"].split("?")[0]
    for s in p["samples"]:
        print("%-12s %8d %7d %9d %9.2f" % (name, s["refresh"], s["nodes"], s["listeners"], s["heap_mib"]))
    a, b = p["samples"][0], p["samples"][-1]
    print("%-12s from the 2nd to the %dth refresh: nodes %+d, listeners %+d, heap %+.2f MiB" % (name, b["refresh"], b["nodes"] - a["nodes"], b["listeners"] - a["listeners"], b["heap_mib"] - a["heap_mib"]))
for p in r["problems"]:
    print("problem:", p)
'
echo "machine: $(uptime)"
