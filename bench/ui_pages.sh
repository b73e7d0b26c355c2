#!/usr/bin/env bash
# Web pages benchmark (not a test): the bytes each page makes the browser download (gzipped,
# HTML, scripts and styles, from the build) and the time from navigation to every panel drawn
# in headless Chromium, against the release `mispdash run` (dispatcher and server) on the
# keyspace of seed2 replayed with the pinned clock. Needs ../shared (the corpus) and what
# `scripts/setup.sh test` installs.
#   bench/ui_pages.sh        (MISPDASH_BIN to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${MISPDASH_BIN:-target/release/mispdash}"
CORPUS="${CORPUS:-../shared/corpus/seed2.jsonl}"
WORK="$(mktemp -d)"
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_pages_and_release ui_pages
PORT=$(free_port)
HTTP=$(free_port)
start_redis "$PORT" "$WORK"
trap 'kill $RPID 2>/dev/null; [ -n "${DPID:-}" ] && kill $DPID 2>/dev/null; rm -rf "$WORK"' EXIT

echo "== bytes per page (gzip -9 of what the page loads; API answers not counted)"
python3 - core/web/dist <<'PY'
import gzip, re, sys, pathlib
dist = pathlib.Path(sys.argv[1])
for html in sorted(dist.glob("*.html")):
    text = html.read_text()
    files = [html] + [dist / p.lstrip("/") for p in re.findall(r'(?:src|href)="(/assets/[^"]+)"', text)]
    total = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    print(f"{html.stem:10} {len(files)} files, {total / 1024:.1f} KiB gzipped")
PY

start_seed2_dashboard "$BIN" "$CORPUS" "$PORT" "$HTTP" "$WORK"
echo "== time to every panel drawn (ms), Chromium, 1920x1080, dark then light"
node core/web/e2e/browse.mjs --base "http://127.0.0.1:$HTTP" --out "$WORK/shots" \
    --page / --page /geo --page /contrib --page /users --page /trendings --page /status |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
for p in r["pages"]:
    print("%-12s %-5s %d ms" % (p["path"], p["theme"], p["ready_ms"]))
for x in r["problems"]:
    print("problem:", x)
'
echo "machine: $(uptime)"
