"""Fixtures of the Python package's tests: a real redis-server on a free loopback port, seed2's
keyspace (what the original dashboard recorded) loaded into it, the standalone `mispdash`
server beside it, and the in-process WSGI application under a real wsgiref server.

Run by scripts/python-tests.sh (what scripts/test.sh and CI run) against the built wheel,
installed in a fresh venv; the standalone server is the repository's debug binary
(MISPDASH_BIN to use another)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MISPDASH_SHARED", REPO.parent / "shared"))
NOW = 1795176000  # seed2's pinned clock: 2026-11-20 12:00 UTC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 20) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def mispdash_bin() -> str:
    return os.environ.get("MISPDASH_BIN", str(REPO / "target" / "debug" / "mispdash"))


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc)

    def command(self, *args: str | bytes) -> bytes:
        """One command over RESP (the standard library only), its raw reply."""
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(resp(*args))
            return read_reply(s.makefile("rb"))

    def load_dump(self, dump: dict) -> None:
        """A redis_dump.py file into this server, pipelined."""
        out = bytearray()
        for db, keys in dump["dbs"].items():
            out += resp("SELECT", db)
            for k, v in keys.items():
                t, val = v["type"], v["value"]
                if t == "string":
                    out += resp("SET", k, val)
                elif t == "list":
                    out += resp("RPUSH", k, *val)
                elif t == "set":
                    out += resp("SADD", k, *val)
                elif t == "zset":
                    args: list[str] = []
                    for member, score in val:
                        args += [repr(float(score)), member]
                    out += resp("ZADD", k, *args)
                elif t == "hash":
                    args = []
                    for f, x in val.items():
                        args += [f, x]
                    out += resp("HSET", k, *args)
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(bytes(out))
            s.sendall(resp("PING"))
            f = s.makefile("rb")
            while read_reply(f) != b"PONG":
                pass

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def resp(*args: str | bytes) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def read_reply(f) -> bytes:
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return b""
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return b"\n".join(read_reply(f) for _ in range(max(n, 0)))
    raise RuntimeError(f"unexpected reply {line!r}")


def write_config(path: Path, redis_port: int, http_port: int, extra: str = "", instances: str = "[]") -> Path:
    path.write_text(
        "[Server]\nhost = 127.0.0.1\nport = %d\n\n[RedisGlobal]\nhost = 127.0.0.1\nport = %d\n"
        "misp_web_url = http://0.0.0.0\nmisp_instances = %s\n\n[RedisMap]\npathMaxMindDB = %s/no.mmdb\n%s"
        % (http_port, redis_port, instances, path.parent, extra)
    )
    return path


def tools_python() -> str:
    """The interpreter that has pyzmq for the shared tools (scripts/setup.sh installs it for
    the default python3; the tests' venv has only the wheel and pytest)."""
    return os.environ.get("MISPDASH_TOOLS_PYTHON") or shutil.which("python3", path="/usr/local/bin:/usr/bin") or "python3"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISPDASH_FAKE_NOW", str(NOW))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="mispdash-py-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis(workdir: Path):
    r = Redis(workdir)
    yield r
    r.stop()


@pytest.fixture
def seed2(redis: Redis) -> Redis:
    redis.load_dump(json.loads((SHARED / "corpus" / "seed2.redis.json").read_text()))
    return redis


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def wsgi_server():
    """Serves a WSGI application on a free loopback port in a thread (threads per request,
    as mod_wsgi's daemon does)."""
    servers = []

    def serve(app) -> str:
        port = free_port()
        srv = make_server("127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        servers.append(srv)
        return f"http://127.0.0.1:{port}"

    yield serve
    for s in servers:
        s.shutdown()


@pytest.fixture
def standalone(workdir: Path):
    """The `mispdash` binary serving only HTTP against a Redis port."""
    procs = []

    def start(redis_port: int) -> str:
        port = free_port()
        cfg = write_config(workdir / "standalone.cfg", redis_port, port)
        p = subprocess.Popen(
            [mispdash_bin(), "-c", str(cfg), "run", "--no-subscribers", "--no-dispatcher", "--no-managed-redis"],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "standalone.log", "wb"),
        )
        procs.append(p)
        wait_port(port, p)
        return f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        p.kill()
        p.wait()


def python() -> str:
    return sys.executable
