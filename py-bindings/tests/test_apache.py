"""End to end with real Apache 2 and Debian's libapache2-mod-wsgi-py3, running the repository's
apache/misp-dashboard.conf and wsgi-shim/misp-dashboard.wsgi with only paths, the port and the
daemon's user substituted: seed2's JSON routes compare equal to the standalone server, a live
stream flows through Apache while 15 other requests are served, a page loads in Chromium, and
a start in a sub-interpreter is refused with its message."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import NOW, REPO, SHARED, Redis, free_port, mispdash_bin, tools_python, wait_port, write_config
from test_package import probe

MODULES = Path("/usr/lib/apache2/modules")

# Debian's mod_wsgi embeds Debian's python3: the daemon runs this venv only when it is one of
# that interpreter (scripts/python-tests.sh makes one of each; this module runs in that one).
pytestmark = pytest.mark.skipif(
    Path(sys.base_prefix).resolve() != Path("/usr"),
    reason="mod_wsgi embeds Debian's python3; the Apache tests run in the venv of /usr/bin/python3",
)


def daemon_user() -> tuple[str, str]:
    """Who the WSGI daemon runs as: mod_wsgi will not run it as root."""
    if os.geteuid() == 0:
        return "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def self_signed(dest: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl, as an admin would make one)."""
    cert, key = dest / "dashboard.pem", dest / "dashboard.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def site_conf(dest: Path, port: int, tls_port: int, venv: Path, shim_dir: Path, keep_global: bool = True, threads: int = 100) -> Path:
    """The repository's vhosts, addresses, paths and the daemon's user substituted (and, for
    the refusal test, the lines that put the dashboard in the main interpreter left out): the
    TLS one on 127.0.0.1:`tls_port` (its `Listen` is MISP's, in ports.conf, so added here), the
    loopback plain one on `port`."""
    text = (REPO / "apache" / "misp-dashboard.conf").read_text()
    user, group = daemon_user()
    cert, key = self_signed(dest)
    text = text.replace("Listen 127.0.0.1:8001", f"Listen 127.0.0.1:{port}")
    text = text.replace("<VirtualHost 127.0.0.1:8001>", f"<VirtualHost 127.0.0.1:{port}>")
    text = text.replace("<VirtualHost *:443>", f"Listen 127.0.0.1:{tls_port}\n<VirtualHost 127.0.0.1:{tls_port}>")
    text = text.replace("/etc/ssl/certs/misp-dashboard.pem", str(cert))
    text = text.replace("/etc/ssl/private/misp-dashboard.key", str(key))
    text = text.replace("user=mispdash group=mispdash", f"user={user} group={group}")
    text = text.replace("threads=100", f"threads={threads}")
    text = text.replace("python-home=/opt/mispdash/venv", f"python-home={venv}")
    text = text.replace("/usr/share/mispdash", str(shim_dir))
    if not keep_global:
        text = text.replace("    WSGIApplicationGroup %{GLOBAL}\n", "")
        text = text.replace(" application-group=%{GLOBAL}", " application-group=sub")
    out = dest / "misp-dashboard.conf"
    out.write_text(text)
    return out


def main_conf(dest: Path, site: Path) -> Path:
    user, group = daemon_user()
    lines = [
        f"ServerRoot {dest}",
        f"PidFile {dest}/apache.pid",
        f"Mutex file:{dest} default",
        "ServerName 127.0.0.1",
        f"ErrorLog {dest}/error.log",
        "LogLevel warn wsgi:info",
        f"DefaultRuntimeDir {dest}",
        f"Define APACHE_LOG_DIR {dest}",
        f"User {user}",
        f"Group {group}",
        "Timeout 60",
    ]
    # Debian's defaults: reqtimeout is on, ssl and headers as apache/README.md enables them.
    for mod in ["mpm_event", "authz_core", "setenvif", "headers", "reqtimeout", "socache_shmcb", "ssl", "wsgi"]:
        lines.append(f"LoadModule {mod}_module {MODULES}/mod_{mod}.so")
    lines.append(f"Include {site}")
    out = dest / "httpd.conf"
    out.write_text("\n".join(lines) + "\n")
    return out


class Apache:
    def __init__(self, workdir: Path, redis_port: int, keep_global: bool = True, threads: int = 100, env: dict[str, str] | None = None, instances: str = "[]", auth: str = "") -> None:
        self.dir = workdir / ("apache" if keep_global else "apache-sub")
        self.dir.mkdir()
        shim = self.dir / "share"
        shim.mkdir()
        shutil.copy(REPO / "wsgi-shim" / "misp-dashboard.wsgi", shim / "misp-dashboard.wsgi")
        self.port = free_port()
        self.tls_port = free_port()
        config = write_config(self.dir / "config.cfg", redis_port, 1, extra=auth, instances=instances)
        venv = Path(sys.prefix)
        site = site_conf(self.dir, self.port, self.tls_port, venv, shim, keep_global, threads)
        conf = main_conf(self.dir, site)
        # The daemon (another user when the tests run as root) reads these.
        for p in [workdir, self.dir, shim]:
            p.chmod(0o755)
        for p in [config, shim / "misp-dashboard.wsgi", site, conf, self.dir / "dashboard.key"]:
            p.chmod(0o644)
        self.config = config
        self.conf = conf
        self.env = dict(os.environ, MISPDASH_CONFIG=str(config), **(env or {}))
        check = subprocess.run(["apache2", "-f", str(conf), "-t"], capture_output=True, text=True, env=self.env)
        assert check.returncode == 0, check.stderr
        self.base = f"http://127.0.0.1:{self.port}"
        self.tls_base = f"https://127.0.0.1:{self.tls_port}"
        self.cert = self.dir / "dashboard.pem"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(["apache2", "-f", str(self.conf), "-DFOREGROUND"], env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "ab"))
        wait_port(self.port, self.proc)
        wait_port(self.tls_port, self.proc)

    def graceful(self) -> None:
        """`apache2 -k graceful`: the children finish their requests, the WSGI daemon restarts."""
        r = subprocess.run(["apache2", "-f", str(self.conf), "-k", "graceful"], capture_output=True, text=True, env=self.env)
        assert r.returncode == 0, r.stderr

    def daemon_pids(self) -> list[int]:
        """The mod_wsgi daemon processes of this Apache: its children that mod_wsgi renamed
        after their group (`display-name`, "(wsgi:misp-dashboard)", cut to the length of the
        original title)."""
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines() if line.split(maxsplit=1)[1].startswith("(wsgi:")]

    def log(self) -> str:
        """Apache's error log and the vhost's (where the dashboard's stderr goes)."""
        files = [self.dir / "error.log", self.dir / "misp-dashboard_error.log"]
        return "".join(f.read_text(errors="replace") for f in files if f.exists())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def apache(seed2: Redis, workdir: Path):
    # Apache and its daemon must reach the venv this test runs in.
    a = Apache(workdir, seed2.port)
    yield a
    a.stop()


def get(url: str, accept: str = "application/json", timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_json_routes_through_apache_equal_the_standalone_server(seed2: Redis, workdir: Path, apache: Apache, standalone):
    server = standalone(seed2.port)
    probe(server, workdir / "server.json")
    probe(apache.base, workdir / "apache.json", requests_from=workdir / "server.json")
    answers = json.loads((workdir / "apache.json").read_text())["responses"]
    ok = sum(1 for a in answers if a["status"] == 200 and "json" in a)
    assert ok > 100, f"only {ok} JSON answers through Apache; its log:\n{apache.log()[-3000:]}"
    r = subprocess.run([sys.executable, str(SHARED / "tools" / "oracle_compare.py"), "http", str(workdir / "server.json"), str(workdir / "apache.json"), "--strict"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:]


def test_a_stream_flows_through_apache_while_15_requests_are_served(seed2: Redis, apache: Apache):
    stop = threading.Event()

    def publish():
        i = 0
        while not stop.is_set():
            i += 1
            log = json.dumps({"Attribute": {"timestamp": str(NOW), "category": "Network activity", "type": "ip-dst", "value": "198.51.100.9", "comment": f"via-apache-{i}"}, "Event": {"id": "9"}})
            seed2.command("PUBLISH", "1", json.dumps({"name": "Attribute", "log": log, "zmqName": "misp1"}))
            time.sleep(0.1)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        req = urllib.request.Request(apache.base + "/_logs", headers={"Accept": "text/event-stream"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            paths = ["/_getHitMap", "/_getTopContributor", "/_get_log_head", "/_getAllOrg", "/_getTrendingEvents"] * 3
            with concurrent.futures.ThreadPoolExecutor(15) as pool:
                results = list(pool.map(lambda p: get(apache.base + p), paths))
            assert [s for s, _ in results] == [200] * 15, results
            seen = 0
            t0 = time.time()
            while seen < 5:
                line = r.readline().decode()
                if line.startswith("data: ") and "via-apache-" in line:
                    seen += 1
            # Events arrive as they are published (every 0.1 s), not in a buffered lump.
            assert time.time() - t0 < 10
    finally:
        stop.set()
        t.join()


def test_a_page_loads_through_apache_in_chromium(apache: Apache, workdir: Path):
    out = workdir / "screenshots"
    r = subprocess.run(
        ["node", "e2e/browse.mjs", "--base", apache.base, "--out", str(out), "--page", "/trendings?from=2026-11-13&to=2026-11-20", "--ready", "section.panel", "--themes", "dark", "--expect", "Most active events"],
        cwd=REPO / "core" / "web",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    print("screenshots in", out)


def test_a_sub_interpreter_is_refused(seed2: Redis, workdir: Path):
    a = Apache(workdir, seed2.port, keep_global=False)
    try:
        status, _ = get(a.base + "/_get_log_head")
        assert status == 500
        end = time.time() + 10
        while "refusing to start in the sub-interpreter" not in a.log() and time.time() < end:
            time.sleep(0.2)
        assert "refusing to start in the sub-interpreter" in a.log(), a.log()[-3000:]
        assert "WSGIApplicationGroup %{GLOBAL}" in a.log()
    finally:
        a.stop()


def attribute(marker: str) -> str:
    """A MISP attribute message whose value is `marker`."""
    return json.dumps(
        {
            "Attribute": {
                "id": "1", "type": "ip-dst", "category": "Network activity", "to_ids": True,
                "uuid": "5e0b2c1e-9f3a-4c55-8f7e-0d6a1c2b3a41", "event_id": "781", "distribution": "5",
                "timestamp": str(NOW - 1), "comment": "", "sharing_group_id": "0", "deleted": False,
                "disable_correlation": False, "object_id": "0", "object_relation": None,
                "first_seen": None, "last_seen": None, "value": marker,
            },
            "Event": {
                "id": "781", "orgc_id": "4", "org_id": "4", "date": "2026-11-20", "threat_level_id": "3",
                "info": "apache restarts", "published": False, "uuid": "1b0c9d7e-3f2a-4b1c-9e8d-7a6b5c4d3e21",
                "analysis": "2", "distribution": "2", "timestamp": str(NOW - 1), "sharing_group_id": "0",
                "publish_timestamp": "0", "Orgc": {"id": "4", "name": "Apache CERT", "uuid": "2c1d0e9f-4a3b-4c2d-8e1f-6a5b4c3d2e11"},
            },
            "action": "add",
        }
    )


def test_the_live_page_through_apache_restarts(seed2: Redis, apache: Apache, workdir: Path):
    """The live page open through Apache while Apache restarts gracefully, its WSGI daemon is
    killed, and Apache is stopped for 20 s and started: each time the page's stream comes back
    by itself and the rows applied meanwhile appear (a dispatcher of its own keeps applying
    them, as one beside MISP does); afterwards the page shows the rows /_logs holds, in its
    order, none twice."""
    import mispdash

    dispatcher = subprocess.Popen(
        [mispdash_bin(), "-c", str(apache.config), "run", "--no-subscribers", "--no-server", "--no-managed-redis"],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "dispatcher.log", "wb"),
    )
    feed = mispdash.Dashboard(str(apache.config))
    applied: list[str] = []

    def apply(phase: str) -> None:
        marker = f"{phase}-{sum(1 for m in applied if m.startswith(phase + '-'))}"
        feed.ingest("misp_json_attribute", attribute(marker), "misp1")
        applied.append(marker)

    out = workdir / "screenshots"
    export = workdir / "log.json"
    waits = ["START-5", "GRACEFUL-9", "KILLED-9", "STOPPED-19", "AFTER-5"]
    args = ["node", "e2e/browse.mjs", "--base", apache.base, "--out", str(out), "--page", "/", "--themes", "dark", "--server-restarts"]
    args += ["--download", f"section[aria-label='Live log'] button[aria-label^='Save the data as JSON']=>{export}"]
    for w in waits:
        args += ["--wait-text", w]
    browser = subprocess.Popen(args, cwd=REPO / "core" / "web", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # (phase, rows, what happens first)
        def graceful() -> None:
            apache.graceful()

        def kill_daemon() -> None:
            pids = apache.daemon_pids()
            assert pids, "no WSGI daemon found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

        def stop_for_20_s() -> None:
            apache.stop()
            end = time.time() + 20
            while time.time() < end:
                if sum(1 for m in applied if m.startswith("STOPPED-")) < 20:
                    apply("STOPPED")
                time.sleep(0.5)
            apache.start()

        time.sleep(3)
        for phase, rows, before in [("START", 6, None), ("GRACEFUL", 10, graceful), ("KILLED", 10, kill_daemon), ("STOPPED", 0, stop_for_20_s)]:
            if before:
                before()
            for _ in range(rows):
                apply(phase)
                time.sleep(0.3)
            # Until the page showed them (each phase waits for its last row).
            time.sleep(6)
        while browser.poll() is None:
            apply("AFTER")
            time.sleep(0.3)
        report = browser.stdout.read() if browser.stdout else ""
        assert browser.returncode == 0, report + (browser.stderr.read() if browser.stderr else "")
    finally:
        if browser.poll() is None:
            browser.kill()
        time.sleep(1)
        dispatcher.kill()
        dispatcher.wait()
    shown = [row[5] for row in json.loads(export.read_text())]
    status, body = get(apache.base + "/_logs")
    assert status == 200
    logged = [r["log"]["5"] for r in json.loads(body)]
    # Rows applied after the page's export are newer than its newest: compare from that row on.
    start = logged.index(shown[0])
    n = min(len(shown), len(logged) - start)
    assert n > 40
    assert shown[:n] == logged[start : start + n], "the page's rows are /_logs's, in its order"
    newest = applied.index(shown[0].split("||")[0])
    for m in applied[: newest + 1]:
        assert shown.count(f"{m}||") == 1, f"{m} is shown {shown.count(f'{m}||')} time(s)"
    print("screenshots in", out)


def test_slow_posts_cannot_hold_the_daemon(seed2: Redis, workdir: Path):
    """Clients announcing 10 MB login bodies and sending them at 600 B/s, more of them than the
    daemon has threads, while a normal request is asked every half second: the vhost's body
    limit answers them at once, so the normal request is answered in under a second."""
    a = Apache(workdir, seed2.port, threads=4)
    stop = threading.Event()
    refused = []

    def slow_post() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", a.port), timeout=30) as s:
                    s.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n")
                    s.settimeout(0.1)
                    while not stop.is_set():
                        s.sendall(b"u" * 60)
                        try:
                            answer = s.recv(64)
                        except socket.timeout:
                            continue
                        refused.append(answer[:12])
                        break
            except OSError:
                time.sleep(0.1)

    attackers = [threading.Thread(target=slow_post, daemon=True) for _ in range(8)]
    try:
        for t in attackers:
            t.start()
        time.sleep(1)
        slowest = 0.0
        for _ in range(16):
            t0 = time.time()
            status, _ = get(a.base + "/_get_log_head", timeout=30)
            slowest = max(slowest, time.time() - t0)
            assert status == 200, a.log()[-3000:]
            time.sleep(0.5)
        assert refused and all(r == b"HTTP/1.1 413" for r in refused), f"the slow bodies were answered {set(refused)}"
        assert slowest < 1.0, f"a normal request took {slowest:.1f} s while slow bodies came"
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=40)
        a.stop()


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def live_log_holds(redis_port: int, marker: str) -> bool:
    """Whether the dashboard's live log (`TEMP_CACHE_LIVE:Attribute`, in whichever db the
    configuration names) has a row of `marker`, read in Redis: no request reaches Apache."""
    return any(marker in redis_cli(redis_port, "-n", str(db), "LRANGE", "TEMP_CACHE_LIVE:Attribute", "0", "-1") for db in range(4))


PUBLISHER = """
import sys, zmq
sock = zmq.Context().socket(zmq.PUB)
sock.bind("tcp://127.0.0.1:%s" % sys.argv[1])
print("bound", flush=True)
for line in sys.stdin:
    sock.send(b"misp_json_attribute " + line.strip().encode())
    print("sent", flush=True)
"""


def test_ingest_starts_with_the_daemon_and_after_a_graceful_restart(seed2: Redis, workdir: Path):
    """With MISPDASH_INGEST=1 and no page ever opened, attributes a stand-in for MISP's
    publisher (a ZeroMQ PUB socket, MISP itself cannot run here) sends after Apache's start,
    and again after `apache2 -k graceful` (what logrotate runs daily), reach the dashboard's
    live log: the daemon loads the dashboard when it starts, not at a first request."""
    pub_port = free_port()
    publisher = subprocess.Popen([tools_python(), "-c", PUBLISHER, str(pub_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert publisher.stdout and publisher.stdin
    assert publisher.stdout.readline().strip() == "bound"
    instances = json.dumps([{"name": "misp1", "url": "https://misp.local", "zmq": f"tcp://127.0.0.1:{pub_port}"}])
    a = Apache(workdir, seed2.port, env={"MISPDASH_INGEST": "1"}, instances=instances)

    def started_pids() -> list[str]:
        return re.findall(r"subscribers and dispatcher started in process (\d+)", a.log())

    def publish_and_find(phase: str) -> None:
        # The subscriber connects and subscribes within a moment of the daemon's start.
        time.sleep(3)
        markers = [f"{phase}-{i}.example.org" for i in range(5)]
        for m in markers:
            publisher.stdin.write(json.dumps(json.loads(attribute(m))) + "\n")
            publisher.stdin.flush()
            assert publisher.stdout.readline().strip() == "sent"
            time.sleep(0.2)
        end = time.time() + 25
        while time.time() < end and not all(live_log_holds(seed2.port, m) for m in markers):
            time.sleep(0.5)
        missing = [m for m in markers if not live_log_holds(seed2.port, m)]
        assert not missing, f"{phase}: not ingested: {missing}; the log:\n{a.log()[-3000:]}"

    try:
        end = time.time() + 20
        while not started_pids() and time.time() < end:
            time.sleep(0.2)
        assert started_pids(), f"ingest did not start with the daemon; the log:\n{a.log()[-3000:]}"
        publish_and_find("STARTED")
        before = started_pids()
        a.graceful()
        end = time.time() + 30
        while len(started_pids()) <= len(before) and time.time() < end:
            time.sleep(0.2)
        assert len(started_pids()) > len(before), f"ingest did not start again after the graceful restart:\n{a.log()[-3000:]}"
        publish_and_find("GRACEFUL")
    finally:
        a.stop()
        publisher.kill()
        publisher.wait()


def test_the_session_cookie_is_secure_over_apaches_tls(seed2: Redis, workdir: Path):
    """With login on and `session_cookie_secure = False`, the cookie is Secure exactly when
    Apache took the request over TLS (the dashboard reads it from the WSGI environment): over
    the TLS vhost it is, over the loopback plain one it is not."""
    auth = "\n[Auth]\nauth_enabled = True\nmisp_fqdn = https://misp.local\nsession_secret = apache-tls-test-secret-0123456789abcdef\nsession_cookie_secure = False\n"
    a = Apache(workdir, seed2.port, auth=auth)
    try:
        tls = ssl.create_default_context(cafile=str(a.cert))

        def csrf_cookie(url: str, context: ssl.SSLContext | None = None) -> str:
            with urllib.request.urlopen(url + "/login", timeout=30, context=context) as r:
                return next(c for c in r.headers.get_all("Set-Cookie") if c.startswith("csrf="))

        secure = csrf_cookie(a.tls_base, tls)
        assert "; Secure" in secure, secure
        plain = csrf_cookie(a.base)
        assert "Secure" not in plain, plain
        # And Apache's own: the TLS vhost says to keep to HTTPS.
        with urllib.request.urlopen(a.tls_base + "/healthz", timeout=30, context=tls) as r:
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        a.stop()


def test_live_streams_leave_threads_for_pages(seed2: Redis, workdir: Path):
    """A daemon of 8 threads: live streams get 4 of them, 2 per client (address, login being
    off here); the next stream of a client is refused with 429, one beyond the slots with 503,
    and a page request is answered at once while the streams are open."""
    a = Apache(workdir, seed2.port, threads=8)
    held: list[http.client.HTTPConnection] = []

    def open_stream(source: str) -> int:
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30, source_address=(source, 0))
        c.request("GET", "/_logs", headers={"Accept": "text/event-stream"})
        r = c.getresponse()
        if r.status == 200:
            held.append(c)
        else:
            r.read()
            c.close()
        return r.status

    try:
        assert [open_stream("127.0.0.1") for _ in range(3)] == [200, 200, 429]
        assert [open_stream("127.0.0.2") for _ in range(2)] == [200, 200]
        assert open_stream("127.0.0.3") == 503
        t0 = time.time()
        status, _ = get(a.base + "/_getTopCoord", timeout=30)
        assert status == 200 and time.time() - t0 < 1.0, f"{status} after {time.time() - t0:.1f} s"
        # A stream's thread learns that its client left when a write fails (keep-alives come
        # every 5 s under a WSGI server), and its slot is free again then.
        held.pop().close()
        end = time.time() + 30
        while open_stream("127.0.0.3") != 200:
            assert time.time() < end, "a slot freed is not free again"
            time.sleep(1)
    finally:
        for c in held:
            c.close()
        a.stop()
