"""End to end with real Apache 2 and Debian's libapache2-mod-wsgi-py3, running the repository's
apache/misp-dashboard.conf and wsgi-shim/misp-dashboard.wsgi with only paths, the port and the
daemon's user substituted: seed2's JSON routes compare equal to the standalone server, a live
stream flows through Apache while 15 other requests are served, a page loads in Chromium, and
a start in a sub-interpreter is refused with its message."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pwd
import grp
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import NOW, REPO, SHARED, Redis, free_port, wait_port, write_config
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


def site_conf(dest: Path, port: int, venv: Path, shim_dir: Path, keep_global: bool = True) -> Path:
    """The repository's vhost, paths substituted (and, for the refusal test, the line that
    puts the dashboard in the main interpreter left out)."""
    text = (REPO / "apache" / "misp-dashboard.conf").read_text()
    user, group = daemon_user()
    text = text.replace("Listen 8001", f"Listen 127.0.0.1:{port}")
    text = text.replace("<VirtualHost *:8001>", f"<VirtualHost 127.0.0.1:{port}>")
    text = text.replace("user=mispdash group=mispdash", f"user={user} group={group}")
    text = text.replace("python-home=/opt/mispdash/venv", f"python-home={venv}")
    text = text.replace("/usr/share/mispdash", str(shim_dir))
    if not keep_global:
        text = text.replace("    WSGIApplicationGroup %{GLOBAL}\n", "", 1)
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
    for mod in ["mpm_event", "authz_core", "setenvif", "headers", "wsgi"]:
        lines.append(f"LoadModule {mod}_module {MODULES}/mod_{mod}.so")
    lines.append(f"Include {site}")
    out = dest / "httpd.conf"
    out.write_text("\n".join(lines) + "\n")
    return out


class Apache:
    def __init__(self, workdir: Path, redis_port: int, keep_global: bool = True) -> None:
        self.dir = workdir / ("apache" if keep_global else "apache-sub")
        self.dir.mkdir()
        shim = self.dir / "share"
        shim.mkdir()
        shutil.copy(REPO / "wsgi-shim" / "misp-dashboard.wsgi", shim / "misp-dashboard.wsgi")
        self.port = free_port()
        config = write_config(self.dir / "config.cfg", redis_port, 1)
        venv = Path(sys.prefix)
        site = site_conf(self.dir, self.port, venv, shim, keep_global)
        conf = main_conf(self.dir, site)
        # The daemon (another user when the tests run as root) reads these.
        for p in [workdir, self.dir, shim]:
            p.chmod(0o755)
        for p in [config, shim / "misp-dashboard.wsgi", site, conf]:
            p.chmod(0o644)
        env = dict(os.environ, MISPDASH_CONFIG=str(config))
        check = subprocess.run(["apache2", "-f", str(conf), "-t"], capture_output=True, text=True, env=env)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(["apache2", "-f", str(conf), "-DFOREGROUND"], env=env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        wait_port(self.port, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"

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
