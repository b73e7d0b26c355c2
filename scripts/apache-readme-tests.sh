#!/usr/bin/env bash
# apache/README.md's install steps, run as written and in their order on a fresh Debian (this
# machine's release, bootstrapped with debootstrap into a chroot that shares this machine's
# loopback), then the dashboard checked through the Apache they set up.
#
# What the README leaves to the admin, or what a chroot lacks, is done here and listed:
# - apt's confirmation is answered yes (APT::Get::Assume-Yes), as the admin would;
# - services do not start during installation (policy-rc.d: no init system in a chroot), so
#   `systemctl reload apache2` becomes starting redis-server and Apache by hand;
# - the certificate the README asks for is a self-signed one for its example ServerName;
# - ports: the vhost's *:443 and 127.0.0.1:8001, and Debian's Listen 80/443, become free
#   loopback ports (this machine's own ports are not ours to take);
# - config.cfg is one in the original dashboard's layout, pointing at that Redis.
# The wheel is the one the Python tests built (WHEEL= to use another), put where the README's
# command finds it. Needs root (debootstrap, chroot, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
ok() { printf 'ok   %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*"
    [ -f "${LOG:-/nonexistent}" ] && tail -40 "$LOG"
    exit 1
}
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=WHEEL bash "$0" "$@"
fi
command -v debootstrap >/dev/null || fail "debootstrap is missing: scripts/setup.sh test installs it"
WHEEL="${WHEEL:-$(ls "$ROOT"/target/wheels-dev/mispdash-*.whl 2>/dev/null | head -1)}"
[ -f "$WHEEL" ] || fail "no wheel: run scripts/python-tests.sh first (or set WHEEL=)"
SUITE="$(. /etc/os-release && echo "$VERSION_CODENAME")"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P80=$(free_port)
P443=$(free_port)
P8001=$(free_port)
RPORT=$(free_port)
CH="$(mktemp -d /tmp/mispdash-fresh-debian.XXXXXX)"
chmod 755 "$CH" # the chroot's / (mktemp makes it 0700: the daemon's users could not read /etc)
LOG="$CH.log"
in_root() { chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
cleanup() {
    [ -n "${KEEP:-}" ] && { echo "kept: $CH (log $LOG)"; return; }
    if [ -x "$CH/usr/sbin/apache2ctl" ]; then in_root apache2ctl stop >/dev/null 2>&1 || true; fi
    if [ -x "$CH/usr/bin/redis-cli" ]; then in_root redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; fi
    sleep 1
    # Whatever still runs from the chroot (a daemon that ignored the stop).
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$CH" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    umount -R "$CH/proc" 2>/dev/null || true
    umount -R "$CH/dev" 2>/dev/null || true
    rm -rf --one-file-system "$CH" "$LOG"
}
trap cleanup EXIT

echo "== apache/README.md on a fresh Debian $SUITE: debootstrap (about a minute)"
debootstrap "$SUITE" "$CH" "$MIRROR" >"$LOG" 2>&1 || fail "debootstrap $SUITE"
# As a fresh install has them: updates and security sources, working DNS, /proc and /dev.
cat >"$CH/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
cp /etc/resolv.conf "$CH/etc/resolv.conf"
mount -t proc proc "$CH/proc"
mount --rbind /dev "$CH/dev"
mount --make-rslave "$CH/dev"
printf '#!/bin/sh\nexit 101\n' >"$CH/usr/sbin/policy-rc.d"
chmod 755 "$CH/usr/sbin/policy-rc.d"
echo 'APT::Get::Assume-Yes "true";' >"$CH/etc/apt/apt.conf.d/90admin-says-yes"
in_root apt-get update -q >>"$LOG" 2>&1 || fail "apt-get update in the fresh Debian"
ok "a fresh Debian $SUITE in $CH"

# The checkout's files the README uses, the wheel where its command looks.
SRC="$CH/root/mispdash"
mkdir -p "$SRC/target/wheels"
cp -r "$ROOT/apache" "$ROOT/wsgi-shim" "$SRC/"
cp "$WHEEL" "$SRC/target/wheels/"
# Step 5's edits (ServerName left as the example; the certificate made for it) and the ports.
sed -i -e "s/<VirtualHost \*:443>/<VirtualHost *:$P443>/" -e "s/127\.0\.0\.1:8001/127.0.0.1:$P8001/g" "$SRC/apache/misp-dashboard.conf"
grep -q "VirtualHost \*:$P443" "$SRC/apache/misp-dashboard.conf" || fail "the vhost has no <VirtualHost *:443> any more: update this test"
mkdir -p "$CH/etc/ssl/certs" "$CH/etc/ssl/private"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=misp-dashboard.example.org" \
    -addext "subjectAltName=DNS:misp-dashboard.example.org" -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$CH/etc/ssl/private/misp-dashboard.key" -out "$CH/etc/ssl/certs/misp-dashboard.pem" >>"$LOG" 2>&1
printf '[Server]\nhost = 127.0.0.1\nport = 8001\ndebug = False\n\n[RedisGlobal]\nhost = 127.0.0.1\nport = %s\nmisp_web_url = http://127.0.0.1\nmisp_instances = [{"name": "misp1", "url": "http://127.0.0.1", "zmq": "tcp://127.0.0.1:50000"}]\n\n[RedisLIST]\ndb = 3\nlistName = bufferList\n\n[RedisLog]\ndb = 0\nchannel = 1\n\n[RedisMap]\ndb = 1\nchannelDisp = PicToDisplay\npathMaxMindDB = ./data/GeoLite2-City/GeoLite2-City.mmdb\n\n[RedisDB]\ndb = 2\ndbVersion = db_version\n' \
    "$RPORT" >"$SRC/config.cfg"

# The README's block, with only the service start replaced (see the top of this file).
STEPS="$CH/root/readme-steps.sh"
awk '/^## Install on Debian/ { f = 1 } f && /^```sh/ { b = 1; next } b && /^```/ { exit } b' "$ROOT/apache/README.md" >"$STEPS"
grep -q '^systemctl reload apache2$' "$STEPS" || fail "apache/README.md's steps no longer end with systemctl reload apache2: update this test"
START="sed -i -e 's/^Listen 80\$/Listen 127.0.0.1:$P80/' -e 's/Listen 443\$/Listen 127.0.0.1:$P443/' /etc/apache2/ports.conf\nredis-server --port $RPORT --bind 127.0.0.1 --daemonize yes --save ''\napache2ctl start"
sed -i "s|^systemctl reload apache2\$|$START|" "$STEPS"
echo "== running apache/README.md's steps (apt-get installs Apache, mod_wsgi and Redis: a minute or two)"
in_root bash -euxo pipefail -c 'cd /root/mispdash && . /root/readme-steps.sh' >>"$LOG" 2>&1 || fail "the README's steps failed"
ok "apache/README.md's steps ran in order on the fresh Debian"

resolve=(--resolve "misp-dashboard.example.org:$P443:127.0.0.1" --cacert "$CH/etc/ssl/certs/misp-dashboard.pem")
tls="https://misp-dashboard.example.org:$P443"
for _ in $(seq 1 150); do
    curl -sf "${resolve[@]}" "$tls/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
health="$(curl -sS "${resolve[@]}" "$tls/healthz" 2>&1)" || fail "no answer over TLS: $health; $(tail -5 "$CH/var/log/apache2/misp-dashboard_error.log" 2>/dev/null)"
printf '%s' "$health" | grep -q '"ok"' || fail "/healthz over TLS: $health"
ok "https://misp-dashboard.example.org/healthz through Apache: $health"
local_health="$(curl -sS "http://127.0.0.1:$P8001/healthz")" || fail "no answer on the loopback vhost"
printf '%s' "$local_health" | grep -q '"ok"' || fail "/healthz on the loopback vhost: $local_health"
ok "the loopback vhost answers /healthz"
headers="$(curl -sS -D - -o "$CH/live.html" "${resolve[@]}" "$tls/")"
printf '%s' "$headers" | grep -qi '^content-security-policy:' || fail "the live page has no CSP: $headers"
printf '%s' "$headers" | grep -qi '^strict-transport-security:' || fail "no HSTS from the TLS vhost"
grep -qi '<html' "$CH/live.html" || fail "the live page is not HTML"
ok "the live page over TLS, with CSP and HSTS"

# The daemon runs as the user step 2 made, and step 4's configuration is readable by it only.
daemon=""
for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$CH" ] && tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q '^(wsgi:'; then
        daemon="${p#/proc/}"
    fi
done
[ -n "$daemon" ] || fail "no mod_wsgi daemon process"
[ "$(stat -c %u "/proc/$daemon")" = "$(in_root id -u mispdash)" ] || fail "the WSGI daemon runs as uid $(stat -c %u "/proc/$daemon")"
ok "the WSGI daemon runs as mispdash"
[ "$(in_root stat -c '%U:%G %a' /etc/mispdash/config.cfg)" = "root:mispdash 640" ] || fail "config.cfg: $(in_root stat -c '%U:%G %a' /etc/mispdash/config.cfg)"
ok "/etc/mispdash/config.cfg root:mispdash 0640"
