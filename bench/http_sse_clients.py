#!/usr/bin/env python3
"""N concurrent Server-Sent-Events clients on /_logs, for the fan-out benchmark.

The clients run in --procs processes (the reading is the benchmark's own bottleneck on a
small machine, not the server's). Each client counts the events it receives. While they listen, probe messages are published
on the live channel (a keepalive whose log holds the send time in ns, zmqName "bench-probe")
every --probe-ms; each client measures how long each probe took to reach it. At the end
(--duration seconds after all clients are connected, then --drain seconds of quiet) it prints
JSON: clients connected, events per client (min/max), and probe delivery latency percentiles.
Standard library only; Redis is spoken to directly (RESP).

  bench/http_sse_clients.py --port HTTP_PORT --redis-port REDIS_PORT -n 1000 --duration 30
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

MARK = b'"zmqName": "bench-probe"'


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Client:
    def __init__(self):
        self.events = 0
        self.latencies = []
        self.connected = False
        self.closed = False
        self.seen = set()


async def run_client(c, host, port, path, source=None, cookie=None, mark=None):
    local = (source, 0) if source else None
    reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    extra = "Cookie: %s\r\n" % cookie if cookie else ""
    writer.write(
        ("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n" % (path, host, extra)).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head[:100])
    c.connected = True
    tail = b""
    try:
        while True:
            chunk = await reader.read(262144)
            if not chunk:
                break
            now = time.time_ns()
            buf = tail + chunk
            if mark:
                # Rows whose value is MARK<sequence>-<send ns> (bench/acl_feed.py): counted and
                # timed once each, wherever the chunk boundaries fall.
                i = 0
                while True:
                    j = buf.find(mark, i)
                    if j < 0:
                        break
                    end = buf.find(b'"', j)
                    if end < 0:
                        break
                    seq, _, sent = buf[j + len(mark):end].partition(b"-")
                    sent = sent[:len(sent) - len(sent.lstrip(b"0123456789"))]
                    if seq not in c.seen and sent:
                        c.seen.add(seq)
                        c.events += 1
                        c.latencies.append((now - int(sent)) / 1e6)
                    i = end
                tail = buf[-256:]
                continue
            c.events += buf.count(b"\ndata: ") - tail.count(b"\ndata: ")
            # Probes whose marker ends in the new bytes (one in the carried tail was counted).
            i = max(0, len(tail) - len(MARK) + 1)
            while True:
                j = buf.find(MARK, i)
                if j < 0:
                    break
                k = buf.rfind(b'"log": [', 0, j)
                if k >= 0:
                    try:
                        c.latencies.append((now - int(buf[k + 8 : buf.find(b"]", k)])) / 1e6)
                    except ValueError:
                        pass
                i = j + 1
            tail = buf[-256:]
    finally:
        c.closed = True
        writer.close()


async def prober(redis_port, channel, every_ms, stop):
    r, w = await asyncio.open_connection("127.0.0.1", redis_port)
    sent = 0
    while not stop.is_set():
        msg = '{"name": "Keepalive", "log": "[%d]", "zmqName": "bench-probe"}' % time.time_ns()
        w.write(resp("PUBLISH", channel, msg))
        await w.drain()
        await r.readline()
        sent += 1
        try:
            await asyncio.wait_for(stop.wait(), every_ms / 1000)
        except asyncio.TimeoutError:
            pass
    w.close()
    return sent


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p / 100))], 2)


async def worker(a):
    """Connects --share clients, then reads until the stop file exists; prints its counts."""
    clients = [Client() for _ in range(a.share)]
    cookies = json.load(open(a.cookies)) if a.cookies else []
    mark = a.mark.encode() if a.mark else None
    tasks = []
    for i, c in enumerate(clients):
        # --sources K: K loopback addresses in turn (127.0.0.1 to 127.0.0.250, then 127.0.1.1
        # and on), as K machines would be, for the server's per-address caps.
        n = i % a.sources
        source = "127.0.%d.%d" % (n // 250, 1 + n % 250) if a.sources > 1 else None
        # --cookies: client number (first + i) signs in as session (first + i) % len.
        cookie = cookies[(a.first + i) % len(cookies)] if cookies else None
        tasks.append(asyncio.ensure_future(
            run_client(c, "127.0.0.1", a.port, "/_logs", source, cookie, mark)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    t0 = time.time()
    while sum(c.connected for c in clients) < a.share and time.time() - t0 < 30:
        await asyncio.sleep(0.05)
    open(a.worker_ready, "w").close()
    while not os.path.exists(a.stop_file):
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    json.dump({
        "connected": sum(c.connected for c in clients),
        "closed": sum(c.closed for c in clients),
        "events": [c.events for c in clients],
        "sessions": [(a.first + i) % len(cookies) if cookies else 0 for i in range(a.share)],
        "latencies": [x for c in clients for x in c.latencies],
    }, sys.stdout)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--drain", type=float, default=3)
    ap.add_argument("--probe-ms", type=float, default=100)
    ap.add_argument("--channel", default="1")
    ap.add_argument("--ready-file", help="touched once every client is connected")
    ap.add_argument("--sources", type=int, default=1, help="client addresses: K loopback addresses from 127.0.0.1")
    ap.add_argument("--cookies", help="JSON list of session cookies, used in turn by the clients")
    ap.add_argument("--mark", help="time rows whose value holds MARK<seq>-<ns> instead of probes")
    ap.add_argument("--events-file", help="write each session's per-client row counts (JSON) here")
    ap.add_argument("--share", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--worker-ready", help=argparse.SUPPRESS)
    ap.add_argument("--stop-file", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.share is not None:
        await worker(a)
        return
    tmp = tempfile.mkdtemp()
    stop_file = os.path.join(tmp, "stop")
    procs, readies = [], []
    first = 0
    for i in range(a.procs):
        share = a.n // a.procs + (1 if i < a.n % a.procs else 0)
        ready = os.path.join(tmp, "ready%d" % i)
        readies.append(ready)
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--port", str(a.port), "--redis-port", str(a.redis_port),
             "--share", str(share), "--worker-ready", ready, "--stop-file", stop_file,
             "--sources", str(a.sources), "--first", str(first)]
            + (["--cookies", a.cookies] if a.cookies else []) + (["--mark", a.mark] if a.mark else []),
            stdout=subprocess.PIPE))
        first += share
    while not all(os.path.exists(r) for r in readies):
        await asyncio.sleep(0.05)
    if a.ready_file:
        open(a.ready_file, "w").close()
    # A moment for the harness to read the server's counters before the first probe.
    await asyncio.sleep(1)
    stop = asyncio.Event()
    probe = None if a.mark else asyncio.ensure_future(prober(a.redis_port, a.channel, a.probe_ms, stop))
    await asyncio.sleep(a.duration)
    stop.set()
    probes = await probe if probe else 0
    await asyncio.sleep(a.drain)
    open(stop_file, "w").close()
    results = [json.loads(p.communicate()[0]) for p in procs]
    lat = [x for r in results for x in r["latencies"]]
    ev = [e for r in results for e in r["events"]]
    if a.events_file:
        per_session = {}
        for r in results:
            for s, e in zip(r["sessions"], r["events"]):
                per_session.setdefault(s, []).append(e)
        json.dump(per_session, open(a.events_file, "w"))
    print(json.dumps({
        "clients": a.n,
        "client_processes": a.procs,
        "connected": sum(r["connected"] for r in results),
        "dropped_before_end": sum(r["closed"] for r in results),
        "events_min": min(ev),
        "events_max": max(ev),
        "probes_sent": probes,
        "probe_deliveries": len(lat),
        "probe_deliveries_expected": probes * a.n,
        "deliveries": len(lat),
        "latency_ms_p50": pct(lat, 50),
        "latency_ms_p99": pct(lat, 99),
        "latency_ms_max": pct(lat, 100),
    }))


if __name__ == "__main__":
    asyncio.run(main())
