#!/usr/bin/env bash
# /_getTopOrglogin benchmark (not a test): a Redis holding 10,000 organisations in
# LOGIN_ORG:<day> and CONTRIB_DAY:<day> for each of the 8 days the route reads, the release
# `mispdash run --no-subscribers --no-dispatcher --http-cache-ms 0`, six requests in a row with
# curl on loopback; prints each request's time and Redis's time per call of the route's script.
#   bench/orglogin.sh [ORGS]        (MISPDASH_BIN to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ORGS="${1:-10000}"
BIN="${MISPDASH_BIN:-target/release/mispdash}"
[ -n "${MISPDASH_BIN:-}" ] || cargo build --release --quiet -p mispdash
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill $DPID 2>/dev/null; rm -rf "$WORK"' EXIT
python3 - "$ORGS" <<'PY' | redis-cli -p "$PORT" -n 2 --pipe >/dev/null
import sys
def resp(*a):
    out = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)
w = sys.stdout.buffer
for d in range(13, 21):
    day = "202611%02d" % d
    for o in range(int(sys.argv[1])):
        w.write(resp("ZADD", "LOGIN_ORG:" + day, 1, "Org %05d" % o))
        w.write(resp("ZADD", "CONTRIB_DAY:" + day, (o * 7) % 101, "Org %05d" % o))
PY
printf '[Server]\nhost = 127.0.0.1\nport = %s\n[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nmisp_instances = []\n' "$HTTP" "$PORT" >"$WORK/c.cfg"
MISPDASH_FAKE_NOW=1795176000 NO_COLOR=1 "$BIN" --config "$WORK/c.cfg" run --no-managed-redis \
    --no-subscribers --no-dispatcher --http-cache-ms 0 2>"$WORK/run.log" &
DPID=$!
until curl -s "http://127.0.0.1:$HTTP/healthz" >/dev/null; do sleep 0.1; done
redis-cli -p "$PORT" config resetstat >/dev/null
for _ in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w "%{time_total} s\n" "http://127.0.0.1:$HTTP/_getTopOrglogin?date=1795176000"
done
echo "Redis's time per script call:"
redis-cli -p "$PORT" info commandstats | grep -E '^cmdstat_(eval|evalsha):' | tr -d '\r' | cut -d, -f1-3
