#!/usr/bin/env bash
# The Debian package, on this machine for real: built (scripts/package.sh deb), installed with
# apt, its units verified by systemd-analyze, the service's ExecStart run as the mispdash user
# against a real Redis until /healthz answers, `mispdash selftest` run as that user, then
# removed (the configuration stays) and purged (it goes). Needs root (or sudo): it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; exit 1; }

bash scripts/package.sh deb
DEB="$(ls "$ROOT"/target/debian/mispdash_*.deb)"
echo "== deb tests: $DEB"
# A previous run's leftovers would hide what a fresh install does.
as_root apt-get purge -y -q mispdash >/dev/null 2>&1 || true
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$DEB" >/dev/null || fail "apt-get install $DEB"
ok "installed with apt-get install ./$(basename "$DEB")"

version="$(/usr/bin/mispdash --version)"
[ "$version" = "mispdash $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ] || fail "--version said: $version"
ok "/usr/bin/mispdash --version: $version"
for f in /usr/share/man/man1/mispdash.1.gz /usr/share/man/man1/mispdash-run.1.gz \
    /usr/share/bash-completion/completions/mispdash /usr/share/mispdash/misp-dashboard.wsgi \
    /lib/systemd/system/mispdash.service /lib/systemd/system/mispdash-subscribe@.service; do
    [ -f "$f" ] || fail "missing $f"
done
ok "man pages, completions, the WSGI entry and both units are installed"
getent passwd mispdash >/dev/null || fail "no mispdash user"
[ "$(stat -c '%U:%G %a' /etc/mispdash/session_secret)" = "root:mispdash 640" ] || fail "session_secret: $(stat -c '%U:%G %a' /etc/mispdash/session_secret)"
[ "$(wc -c </etc/mispdash/session_secret)" -ge 64 ] || fail "session_secret too short"
dpkg-query -W -f='${Conffiles}\n' mispdash | grep -q /etc/mispdash/config.cfg || fail "config.cfg is not a conffile"
ok "mispdash user, generated session secret (root:mispdash 0640), config.cfg a conffile"

out="$(systemd-analyze verify /lib/systemd/system/mispdash.service /lib/systemd/system/mispdash-subscribe@.service 2>&1 || true)"
# Units this machine does not have (redis-server.service when Redis is not installed as a
# service) are not the units' fault; anything else is.
bad="$(printf '%s\n' "$out" | grep -v -e '^$' -e 'redis-server.service' -e 'network-online.target' || true)"
[ -z "$bad" ] || fail "systemd-analyze verify: $bad"
ok "systemd-analyze verify: both units"
# The sandbox: every directive that does not cut the network (the units need it: Redis, MISP,
# the web port), an address allow list, and the exposure systemd rates (1.0: what is left is
# the network itself, the root directory and the clock device ProtectClock= keeps readable).
for u in mispdash.service mispdash-subscribe@.service; do
    unit="/lib/systemd/system/$u"
    for d in MemoryDenyWriteExecute=yes PrivateUsers=yes RemoveIPC=yes PrivateMounts=yes ProcSubset=pid \
        'SystemCallFilter=~@privileged @resources' UMask=0077 StateDirectoryMode=0700 IPAddressDeny=any; do
        grep -qxF "$d" "$unit" || fail "$u lacks $d"
    done
    score="$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')"
    awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 1.0) }' || fail "$u: exposure level $score"
    ok "$u: sandboxed, exposure level $score"
done
[ "$(stat -c '%U %a' /var/lib/mispdash)" = "mispdash 700" ] || fail "/var/lib/mispdash: $(stat -c '%U %a' /var/lib/mispdash)"
ok "/var/lib/mispdash made mispdash 0700"
# An admin's choice of modes survives an upgrade (postinst configure with a previous version).
as_root chmod 0600 /etc/mispdash/session_secret
as_root chmod 0600 /etc/mispdash/config.cfg
as_root /var/lib/dpkg/info/mispdash.postinst configure 0.0.1 >/dev/null
[ "$(stat -c '%a' /etc/mispdash/session_secret) $(stat -c '%a' /etc/mispdash/config.cfg)" = "600 600" ] ||
    fail "postinst reset modes: $(stat -c '%a' /etc/mispdash/session_secret) $(stat -c '%a' /etc/mispdash/config.cfg)"
as_root chmod 0640 /etc/mispdash/session_secret /etc/mispdash/config.cfg
ok "postinst keeps the modes an admin set"

# The service's command line, as the unit runs it, as its user, against a real Redis.
WORK="$(mktemp -d)"
chmod 755 "$WORK"
REDIS_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
HTTP_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
RPID=$!
# The service runs under runuser in a subshell: $! is that subshell, not mispdash, so it is
# stopped by its user and name, and waited for.
stop_service() {
    as_root pkill -u mispdash -x mispdash 2>/dev/null || true
    for _ in $(seq 1 50); do
        pgrep -u mispdash -x mispdash >/dev/null || return 0
        sleep 0.2
    done
    as_root pkill -KILL -u mispdash -x mispdash 2>/dev/null || true
}
cleanup() { kill "$RPID" 2>/dev/null || true; [ -n "${SPID:-}" ] && stop_service; rm -rf "$WORK"; }
trap cleanup EXIT
# The installed configuration with this test's ports (the unit reads MISPDASH_CONFIG).
sed -e "s/^port = 8001/port = $HTTP_PORT/" -e "s/^port = 6379/port = $REDIS_PORT/" /etc/mispdash/config.cfg >"$WORK/config.cfg"
chmod 644 "$WORK/config.cfg"
EXEC="$(sed -n 's/^ExecStart=//p' /lib/systemd/system/mispdash.service)"
as_root install -d -o mispdash -g mispdash -m 0700 /var/lib/mispdash
# shellcheck disable=SC2086
as_root runuser -u mispdash -- env MISPDASH_CONFIG="$WORK/config.cfg" MISPDASH_DATA_DIR=/var/lib/mispdash $EXEC >"$WORK/service.log" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz" || true)"
    [ "$code" = 200 ] && break
    sleep 0.2
done
[ "$code" = 200 ] || { cat "$WORK/service.log"; fail "/healthz answered ${code:-nothing}"; }
ok "ExecStart ($EXEC) as mispdash: /healthz 200"
# Login is on in the shipped configuration: the API wants a session.
code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' "http://127.0.0.1:$HTTP_PORT/_getTopCoord")"
[ "$code" = 401 ] || fail "the API answered $code without a session"
ok "login on by default: the API answers 401 without a session"
stop_service
wait "$SPID" 2>/dev/null || true
pgrep -u mispdash -x mispdash >/dev/null && fail "mispdash run outlived the service check"
SPID=""
st="$(as_root runuser -u mispdash -- env MISPDASH_CONFIG="$WORK/config.cfg" /usr/bin/mispdash selftest 2>&1 || true)"
printf '%s\n' "$st" | grep -q "Redis" || { printf '%s\n' "$st"; fail "selftest as mispdash said nothing of Redis"; }
printf '%s\n' "$st" | grep -qi "permission denied" && { printf '%s\n' "$st"; fail "selftest as mispdash: permission denied"; }
ok "mispdash selftest runs as the mispdash user"
# The package's choice (the system Redis as found, here without a password) is named, with
# the way to set one, and the GeoIP fix points at downloads, not at a checkout's script.
js="$(as_root runuser -u mispdash -- env MISPDASH_CONFIG="$WORK/config.cfg" /usr/bin/mispdash selftest --json --timeout 2 --silence 2 2>/dev/null || true)"
printf '%s' "$js" | python3 -c '
import json, sys
c = {x["id"]: x for x in json.load(sys.stdin)["checks"]}
r, g = c["redis"], c["geoip"]
assert r["status"] == "WARN" and "without a password" in r["seen"] and "requirepass" in r["fix"], r
assert g["status"] == "PASS" or ("scripts/setup.sh" not in g.get("fix", "") and "db-ip.com" in g.get("fix", "")), g
' || { printf '%s
' "$js"; fail "selftest --json from the package: the Redis password or GeoIP lines are wrong"; }
ok "selftest from the package: a Redis without password is named with the fix; the GeoIP fix fits a package install"

as_root apt-get remove -y -q mispdash >/dev/null || fail "apt-get remove"
[ -f /etc/mispdash/config.cfg ] || fail "remove took the configuration"
[ ! -e /usr/bin/mispdash ] || fail "remove left /usr/bin/mispdash"
ok "remove: the binary goes, /etc/mispdash/config.cfg stays"
as_root apt-get purge -y -q mispdash >/dev/null || fail "apt-get purge"
[ ! -e /etc/mispdash ] || fail "purge left $(ls -A /etc/mispdash)"
[ ! -e /var/lib/mispdash ] || fail "purge left /var/lib/mispdash"
ok "purge: /etc/mispdash and /var/lib/mispdash are gone (the system user stays, as Debian's policy advises)"
