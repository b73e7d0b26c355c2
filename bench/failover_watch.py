#!/usr/bin/env python3
"""The failover drill's viewer and prober (bench/failover.sh): through the load balancer, one
reader of the live page's stream (/_mispdash/stream?topics=live, reconnecting a second after its
connection ends, as the page does) and a prober asking a JSON route every 100 ms. Runs until
--stop-file exists, then prints a JSON summary: every probe (time, status), every live event's
arrival time, the stream's connections (time, status line) and its errors."""
import argparse
import asyncio
import json
import os
import time


async def probe(a, out):
    while not os.path.exists(a.stop_file):
        t = time.time()
        status = 0
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), 2)
            w.write(("GET %s HTTP/1.1\r\nHost: drill\r\nAccept: application/json\r\n"
                     "Connection: close\r\n\r\n" % a.route).encode())
            line = await asyncio.wait_for(r.readline(), 3)
            status = int(line.split()[1]) if line.startswith(b"HTTP/") else -1
            w.close()
        except Exception:  # noqa: BLE001 - a failed probe is a data point, not an end
            status = 0
        out["probes"].append([round(t, 3), status])
        await asyncio.sleep(max(0.0, 0.1 - (time.time() - t)))


async def stream(a, out):
    while not os.path.exists(a.stop_file):
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", a.port, limit=1 << 24), 2)
            w.write(b"GET /_mispdash/stream?topics=live HTTP/1.1\r\nHost: drill\r\n"
                    b"Accept: text/event-stream\r\n\r\n")
            status = await asyncio.wait_for(r.readline(), 5)
            out["connections"].append([round(time.time(), 3), status.decode(errors="replace").strip()])
            if b" 200 " not in status:
                raise ConnectionError(status)
            while not os.path.exists(a.stop_file):
                try:
                    line = await asyncio.wait_for(r.readline(), 1)
                except asyncio.TimeoutError:
                    continue
                if not line:
                    break
                line = line.rstrip(b"\r\n")
                if line.startswith(b"event: live"):
                    out["live"].append(round(time.time(), 3))
            w.close()
        except Exception as e:  # noqa: BLE001 - the page reconnects after any failure
            out["stream_errors"].append([round(time.time(), 3), str(e)[:200]])
        await asyncio.sleep(1)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--route", default="/_getTopCoord")
    ap.add_argument("--stop-file", required=True)
    a = ap.parse_args()
    out = {"probes": [], "live": [], "connections": [], "stream_errors": []}
    await asyncio.gather(probe(a, out), stream(a, out))
    print(json.dumps(out))


asyncio.run(main())
