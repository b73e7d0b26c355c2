#!/usr/bin/env bash
# Live page endurance (not a test): the release `mispdash run` (its server on) on seed2's
# keyspace, fed 100 attributes and 100 map points per second on the live channels for
# DURATION seconds (default 600), while headless Chromium keeps the live page open. Reports
# every 30 s the log's rows and the map's points (both must stay bounded), the JS heap after
# a garbage collection (must grow less than 20 MB), and the frames longer than 100 ms.
#   bench/ui_endurance.sh            DURATION=120 bench/ui_endurance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${MISPDASH_BIN:-target/release/mispdash}"
DURATION="${DURATION:-600}"
RATE="${RATE:-100}"
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_pages_and_release ui_endurance
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill $DPID 2>/dev/null; [ -n "${PPID2:-}" ] && kill $PPID2 2>/dev/null; rm -rf "$WORK"' EXIT
start_seed2_dashboard "$BIN" ../shared/corpus/seed2.jsonl "$PORT" "$HTTP" "$WORK"
# The feed: what the dispatcher publishes for an attribute and for a located value, at RATE
# per second each, with varying values and places.
python3 - "$PORT" "$RATE" "$DURATION" <<'PY' &
import json, random, socket, sys, time
port, rate, duration = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) + 30
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    b = b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in (y.encode() for y in a))
    s.sendall(b)
categs = ["Network activity", "Payload delivery", "External analysis", "Person", "Other"]
end, i = time.time() + duration, 0
while time.time() < end:
    t0 = time.time()
    for _ in range(rate):
        i += 1
        log = {"Attribute": {"timestamp": str(1795176000 + i), "category": random.choice(categs), "type": "ip-dst",
                             "value": f"198.51.{i % 256}.{i // 256 % 256}", "comment": f"endurance {i}"},
               "Event": {"id": str(i % 500)}}
        cmd("PUBLISH", "1", json.dumps({"name": "Attribute", "log": json.dumps(log), "zmqName": "misp1"}))
        cmd("PUBLISH", "PicToDisplay", json.dumps({"coord": {"lat": random.uniform(-60, 70), "lon": random.uniform(-180, 180)},
            "categ": "Network activity", "value": f"198.51.{i % 256}.{i // 256 % 256}", "country": "X",
            "specifName": "", "cityName": "", "regionCode": random.choice(["US", "FR", "DE", "JP", "BR", "IN"])}))
    s.recv(1 << 20)
    time.sleep(max(0, 1 - (time.time() - t0)))
PY
PPID2=$!
echo "== live page, $RATE log rows and $RATE map points per second, $DURATION s"
node core/web/e2e/endurance.mjs --base "http://127.0.0.1:$HTTP" --seconds "$DURATION" 2>"$WORK/samples.log" |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r["samples"]
print("%6s %6s %7s %7s %9s  %-24s %s" % ("t (s)", "rows", "points", "nodes", "heap MiB", "frames > 100 ms", "(during the forced GC)"))
for x in s:
    print("%6d %6d %7d %7d %9.1f  %-24s %s" % (x["t"], x["rows"], x["points"], x["nodes"], x["heap_mib"], x["long"] or "-", x["longGc"] or "-"))
after = [x for x in s if x["t"] > 60]
if after:
    print("heap growth after the first minute: %+.1f MiB; longest frame after it: %s ms" % (
        after[-1]["heap_mib"] - after[0]["heap_mib"], max([max(x["long"]) for x in after if x["long"]] or [0])))
for p in r["problems"]:
    print("problem:", p)
'
echo "machine: $(uptime)"
