"""The `mispdash` Python package, installed from the built wheel: import, WSGI calls through a
real wsgiref server and through plain environ dicts, every JSON route compared with the
standalone server on seed2, a live stream iterated while messages flow, `ingest` into a real
Redis, errors as exceptions, and the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import mispdash

from conftest import NOW, SHARED, Redis, free_port, resp, tools_python, write_config


def call(app, path: str, method: str = "GET", headers: dict | None = None, body: bytes = b"", query: str = "") -> tuple[str, dict, bytes]:
    """One request through a plain environ dict, as a WSGI server would make it."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    got: dict = {}

    def start_response(status, response_headers, exc_info=None):
        got["status"] = status
        got["headers"] = dict(response_headers)

    out = app(environ, start_response)
    try:
        data = b"".join(out)
    finally:
        close = getattr(out, "close", None)
        if close:
            close()
    return got["status"], got["headers"], data


def test_import_and_version():
    assert mispdash.__version__.count(".") == 2
    assert issubclass(mispdash.MispdashError, Exception)


def test_environ_dicts(seed2: Redis, workdir: Path):
    dash = mispdash.Dashboard(write_config(workdir / "c.cfg", seed2.port, 1))
    app = dash.application
    status, headers, body = call(app, "/_getHitMap", headers={"Accept": "application/json"}, query=f"date={NOW}")
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    hits = json.loads(body)
    assert hits[0] == ["US", 55.0], hits[:3]
    # The server's security headers come along; hop-by-hop ones never do.
    assert headers["X-Frame-Options"] == "DENY"
    assert "Connection" not in headers and "Transfer-Encoding" not in headers
    # A page, then a path that is not one: JSON 404 as from the server.
    status, headers, body = call(app, "/trendings", headers={"Accept": "text/html"})
    assert status == "200 OK" and b"<script type=\"module\"" in body
    status, _, body = call(app, "/no/such/route", headers={"Accept": "application/json"})
    assert status.startswith("404") and json.loads(body)["error"]
    # Percent-encoded names arrive decoded in PATH_INFO and are encoded again.
    status, _, body = call(app, "/_getAllOrgsTrophyRanking/network_activity", headers={"Accept": "application/json"})
    assert status == "200 OK" and isinstance(json.loads(body), list)
    # A body larger than any route reads is refused before it is read.
    status, _, body = call(app, "/login", method="POST", body=b"x" * 70000)
    assert status.startswith("413"), status


def probe(base: str, out: Path, requests_from: Path | None = None) -> None:
    cmd = [sys.executable, str(SHARED / "tools" / "http_probe.py"), "--base", base, "--now", str(NOW), "--corpus", str(SHARED / "corpus" / "seed2.jsonl"), "-o", str(out)]
    if requests_from:
        cmd += ["--requests-from", str(requests_from)]
    subprocess.run(cmd, check=True, timeout=300)


def test_every_json_route_as_the_standalone_server(seed2: Redis, workdir: Path, standalone, wsgi_server):
    server = standalone(seed2.port)
    dash = mispdash.Dashboard(write_config(workdir / "c.cfg", seed2.port, 1))
    wsgi = wsgi_server(dash.application)
    probe(server, workdir / "server.json")
    probe(wsgi, workdir / "wsgi.json", requests_from=workdir / "server.json")
    answers = json.loads((workdir / "wsgi.json").read_text())["responses"]
    ok = sum(1 for a in answers if a["status"] == 200 and "json" in a)
    assert ok > 100, f"only {ok} JSON answers of {len(answers)}"
    r = subprocess.run(
        [sys.executable, str(SHARED / "tools" / "oracle_compare.py"), "http", str(workdir / "server.json"), str(workdir / "wsgi.json"), "--strict"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-4000:]


def test_a_live_stream_flows_while_messages_come(seed2: Redis, workdir: Path, wsgi_server):
    dash = mispdash.Dashboard(write_config(workdir / "c.cfg", seed2.port, 1))
    base = wsgi_server(dash.application)
    stop = threading.Event()

    def publish():
        i = 0
        while not stop.is_set():
            i += 1
            log = json.dumps({"Attribute": {"timestamp": str(NOW), "category": "Network activity", "type": "ip-dst", "value": f"198.51.100.{i % 250}", "comment": f"py-stream-{i}"}, "Event": {"id": "9"}})
            seed2.command("PUBLISH", "1", json.dumps({"name": "Attribute", "log": log, "zmqName": "misp1"}))
            time.sleep(0.1)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        req = urllib.request.Request(base + "/_logs", headers={"Accept": "text/event-stream"})
        seen = []
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            # Meanwhile the other threads serve: a JSON route answers while the stream is open.
            other = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/_get_log_head", headers={"Accept": "application/json"}), timeout=10).read())
            assert other[0] == "Attribute.timestamp"
            while len(seen) < 5:
                line = r.readline().decode()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
        assert all(e["name"] == "Attribute" for e in seen)
        assert any("py-stream-" in json.dumps(e) for e in seen)
    finally:
        stop.set()
        t.join()


def test_a_live_stream_while_seed2_replays_through_the_ingest(redis: Redis, workdir: Path, wsgi_server):
    """The whole path in one process: seed2 published on a real ZeroMQ socket, received by the
    subscriber that `start()` runs, dispatched, and read from `/_logs` through the WSGI app."""
    zport = free_port()
    cfg = write_config(workdir / "c.cfg", redis.port, 1, instances='[{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:%d"}]' % zport)
    dash = mispdash.Dashboard(cfg)
    base = wsgi_server(dash.application)
    dash.start()
    replay = subprocess.Popen(
        [tools_python(), str(SHARED / "tools" / "zmq_replay.py"), str(SHARED / "corpus" / "seed2.jsonl"), "--bind", f"tcp://127.0.0.1:{zport}", "--rate", "200", "--quiet", "--wait-timeout", "30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        req = urllib.request.Request(base + "/_logs", headers={"Accept": "text/event-stream"})
        seen = 0
        with urllib.request.urlopen(req, timeout=30) as r:
            while seen < 20:
                line = r.readline().decode()
                if line.startswith("data: ") and json.loads(line[6:]).get("name") in ("Attribute", "ObjectAttribute"):
                    seen += 1
        assert seen == 20
    finally:
        replay.kill()
        _, err = replay.communicate()
        dash.stop()
    assert b"Traceback" not in err, err.decode()


def test_ingest_goes_through_the_dispatcher(redis: Redis, workdir: Path):
    dash = mispdash.Dashboard(write_config(workdir / "c.cfg", redis.port, 1))
    event = {
        "Event": {"id": "42", "info": "py ingest", "Orgc": {"name": "PyOrg"}, "Tag": [], "timestamp": str(NOW),
                  "Attribute": [{"id": "1", "category": "Network activity", "type": "ip-dst", "value": "192.0.2.1", "timestamp": str(NOW), "to_ids": True}]}
    }
    dash.ingest("misp_json", event)
    dash.ingest("misp_json_self", b'{"status": "ok"}')
    # The buffer is in [RedisLIST] db (3): both are there until the dispatcher runs.
    assert redis_in_db(redis, 3, "LLEN", "bufferList") == b"2"
    dash.start(subscribe=False, dispatch=True)
    assert dash.running
    try:
        end = time.time() + 20
        while time.time() < end:
            titles = redis_in_db(redis, 2, "ZRANGE", "TRENDINGS_EVENTS:20261120", "0", "-1")
            if b"py ingest" in titles:
                break
            time.sleep(0.2)
        assert b"py ingest" in titles
        assert redis_in_db(redis, 3, "LLEN", "bufferList") == b"0"
    finally:
        dash.stop()
    assert not dash.running
    dash.stop()  # idempotent


def redis_in_db(redis: Redis, db: int, *cmd: str) -> bytes:
    import socket

    from conftest import read_reply

    with socket.create_connection(("127.0.0.1", redis.port)) as s:
        s.sendall(resp("SELECT", str(db)) + resp(*cmd))
        f = s.makefile("rb")
        read_reply(f)
        return read_reply(f)


def test_errors_are_exceptions(redis: Redis, workdir: Path):
    with pytest.raises(mispdash.MispdashError, match="no-such.cfg"):
        mispdash.Dashboard(workdir / "no-such.cfg")
    bad = workdir / "bad.cfg"
    bad.write_text("[RedisGlobal]\nport = not-a-port\n")
    with pytest.raises(mispdash.MispdashError, match="port"):
        mispdash.Dashboard(bad)
    # Redis unreachable: reading says so.
    dead = mispdash.Dashboard(write_config(workdir / "dead.cfg", 1, 1))
    with pytest.raises(mispdash.MispdashError, match="Redis"):
        dead.ingest("misp_json", {"Event": {}})
    with pytest.raises(ValueError, match="JSON"):
        dead.ingest("misp_json", "not json")
    with pytest.raises(ValueError, match="topic"):
        dead.ingest("two words", "{}")
    # Login on with the default secret: refused when the routes are made.
    weak = write_config(workdir / "weak.cfg", redis.port, 1, "\n[Auth]\nauth_enabled = True\nmisp_fqdn = https://127.0.0.1:1\nsession_secret = **Change_Me**\n")
    with pytest.raises(mispdash.MispdashError, match="session_secret"):
        mispdash.Dashboard(weak).prepare()


def test_status_and_read_helpers(seed2: Redis, workdir: Path):
    dash = mispdash.Dashboard(write_config(workdir / "c.cfg", seed2.port, 1))
    st = dash.status()
    assert st["redis"]["reachable"] is True
    top = dash.top_contributors(NOW)
    assert top[0]["org"] == "Lumen Media CSIRT" and top[0]["pnts"] == 1115.0
    assert dash.org_rank("Carpathia Gov CERT")["points"] == 636.0
    events = dash.trendings(NOW - 7 * 86400, NOW)
    assert len(events) == 8 and events[0][0] == NOW
    card = dash.login_punchcard(NOW)
    assert len(card) == 7 and all(len(row) == 24 for row in card) and sum(map(sum, card)) > 0
    with pytest.raises(ValueError):
        dash.trendings(NOW, what="nope")


def test_read_helpers_need_no_login(seed2: Redis, workdir: Path):
    cfg = write_config(workdir / "auth.cfg", seed2.port, 1, "\n[Auth]\nauth_enabled = True\nmisp_fqdn = https://127.0.0.1:1\nsession_secret = a-long-secret-made-for-this-test-0123456789\n")
    dash = mispdash.Dashboard(cfg)
    # A client without a session is refused; the program's own question is not.
    status, _, _ = call(dash.application, "/_getTopContributor", headers={"Accept": "application/json"})
    assert status.startswith("401")
    assert dash.top_contributors(NOW)[0]["org"] == "Lumen Media CSIRT"


def test_command_line(seed2: Redis, workdir: Path):
    r = subprocess.run([sys.executable, "-m", "mispdash", "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("mispdash "), r
    assert mispdash.__version__ in r.stdout
    cfg = write_config(workdir / "c.cfg", seed2.port, 1)
    r = subprocess.run([sys.executable, "-m", "mispdash", "-c", str(cfg), "selftest", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "selftest" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mispdash", "-c", str(cfg), "selftest"], capture_output=True, text=True, timeout=120)
    # No MISP feed is configured here: selftest says so and what else it checked.
    out = r.stdout + r.stderr
    assert "Redis" in out, out
    # The same checks as the binary's, from the wheel: the test Redis has no password (a
    # warning that says how to set one) and no feed is configured (the demo feed is named).
    r = subprocess.run([sys.executable, "-m", "mispdash", "-c", str(cfg), "selftest", "--json", "--timeout", "2"],
                       capture_output=True, text=True, timeout=120)
    report = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert report["redis"]["status"] == "WARN" and "requirepass" in report["redis"]["fix"], report["redis"]
    assert report["feeds"]["status"] == "WARN" and "demo feed" in report["feeds"]["seen"], report["feeds"]
    assert report["databases"]["status"] == "PASS", report["databases"]
    r = subprocess.run([sys.executable, "-m", "mispdash", "no-such-command"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "no-such-command" in r.stderr



def on_port(port: int, db: int, *cmd: str) -> bytes:
    """One command in database `db` of the Redis on `port`, its raw reply."""
    import socket

    from conftest import read_reply

    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(resp("SELECT", str(db)) + resp(*cmd))
        f = s.makefile("rb")
        read_reply(f)
        return read_reply(f)


def master_named(sentinel_port: int) -> bytes:
    """The master's port as the Sentinel on `sentinel_port` names it (b"" before it knows)."""
    import socket

    from conftest import read_reply

    try:
        with socket.create_connection(("127.0.0.1", sentinel_port), timeout=2) as s:
            s.sendall(resp("SENTINEL", "get-master-addr-by-name", "dash"))
            return read_reply(s.makefile("rb")).split(b"\n")[-1]
    except (OSError, RuntimeError):
        return b""


def wait_for(what, seconds: float) -> bool:
    end = time.time() + seconds
    while time.time() < end:
        if what():
            return True
        time.sleep(0.1)
    return what()


def test_the_package_follows_a_sentinel_failover(redis: Redis, workdir: Path):
    """With [RedisGlobal] sentinels, a real replica and a real redis-sentinel: the master is
    killed, the Sentinel promotes the replica, and the package (ingest, the in-process
    dispatcher, the WSGI routes) goes on with the new master."""
    replica_port = free_port()
    replica = subprocess.Popen(
        ["redis-server", "--port", str(replica_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--replicaof", "127.0.0.1", str(redis.port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sport = free_port()
    (workdir / "s.conf").write_text(
        f"port {sport}\nbind 127.0.0.1\ndir {workdir}\nsentinel monitor dash 127.0.0.1 {redis.port} 1\n"
        "sentinel down-after-milliseconds dash 1000\nsentinel failover-timeout dash 5000\n"
    )
    sentinel = subprocess.Popen(["redis-sentinel", str(workdir / "s.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def replicating() -> bool:
            try:
                return b"master_link_status:up" in on_port(replica_port, 0, "INFO", "replication")
            except (OSError, RuntimeError):
                return False

        def sentinel_knows_the_replica() -> bool:
            # The Sentinel learns of replicas from the master's INFO, every 10 s: a master
            # killed before that has no replica to promote.
            import socket

            from conftest import read_reply

            try:
                with socket.create_connection(("127.0.0.1", sport), timeout=2) as s:
                    s.sendall(resp("SENTINEL", "replicas", "dash"))
                    return str(replica_port).encode() in read_reply(s.makefile("rb"))
            except (OSError, RuntimeError):
                return False

        assert wait_for(lambda: master_named(sport) == str(redis.port).encode() and replicating(), 20)
        assert wait_for(sentinel_knows_the_replica, 30)
        # host and port name nothing that listens: only the Sentinel says where Redis is.
        cfg = write_config(workdir / "c.cfg", 1, free_port())
        cfg.write_text(cfg.read_text().replace(
            "port = 1\n", f"port = 1\nsentinels = 127.0.0.1:{sport}\nsentinel_master = dash\n", 1))
        dash = mispdash.Dashboard(cfg)

        def event(n: int) -> str:
            return json.dumps({"Event": {
                "id": str(100 + n), "info": f"failover {n}", "Orgc": {"name": "PyOrg"}, "Tag": [], "timestamp": str(NOW),
                "Attribute": [{"id": str(n), "category": "Network activity", "type": "ip-dst", "value": f"192.0.2.{n}",
                               "timestamp": str(NOW), "to_ids": True}]}})

        def recorded(port: int, n: int) -> bool:
            try:
                return f"failover {n}".encode() in on_port(port, 2, "ZRANGE", "TRENDINGS_EVENTS:20261120", "0", "-1")
            except (OSError, RuntimeError):
                return False

        dash.start(subscribe=False, dispatch=True)
        try:
            dash.ingest("misp_json", event(1))
            assert wait_for(lambda: recorded(redis.port, 1), 20)
            redis.stop()
            assert wait_for(lambda: master_named(sport) == str(replica_port).encode(), 30)
            # Each ingest asks the Sentinel anew. Right after the switch it may not yet name a
            # master that answers as one (redis-rs checks its role): ingest then says so, and
            # the caller tries again, as a subscriber would. The dispatcher reconnects by itself.
            refusals: list[str] = []

            def ingested() -> bool:
                try:
                    dash.ingest("misp_json", event(2))
                    return True
                except mispdash.MispdashError as e:
                    refusals.append(str(e))
                    return False

            assert wait_for(ingested, 30), refusals[-3:]
            assert all("cannot reach Redis" in r for r in refusals), refusals
            assert wait_for(lambda: recorded(replica_port, 2), 30)

            def answered() -> bool:
                status, _, body = call(dash.application, "/_getTrendingEvents", headers={"Accept": "application/json"},
                                       query=f"dateS={NOW - 86400}&dateE={NOW}")
                return status == "200 OK" and "failover 2" in body.decode()

            assert wait_for(answered, 15)
        finally:
            dash.stop()
    finally:
        sentinel.kill()
        replica.kill()
        sentinel.wait()
        replica.wait()
