#!/usr/bin/env python3
"""The soak's live viewers (bench/soak.sh): N clients of the pages' combined stream
(/_mispdash/stream?topics=live,map) that connect, read for a while, leave and come back, from
as many loopback addresses as the per-client stream cap needs (25 each). Prints a JSON summary:
connections, answers other than 200 (with when), live events read, and streams the server
ended."""
import argparse
import asyncio
import json
import random
import time


async def client(n, a, stats, deadline):
    source = "127.0.1.%d" % (1 + n // 25)
    rnd = random.Random(n)
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", a.port, local_addr=(source, 0),
                                        limit=1 << 24), 10)
        except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the soak
            stats["connect_errors"].append([time.time(), str(e)])
            await asyncio.sleep(1)
            continue
        stats["connections"] += 1
        w.write(("GET /_mispdash/stream?topics=live,map HTTP/1.1\r\nHost: soak\r\n"
                 "Accept: text/event-stream\r\n\r\n").encode())
        stay = min(deadline, time.monotonic() + rnd.uniform(a.min_stay, a.max_stay))
        try:
            status = await asyncio.wait_for(r.readline(), 15)
            if b" 200 " not in status:
                stats["bad_answers"].append([time.time(), status.decode(errors="replace").strip()])
            else:
                while True:
                    left = stay - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        line = await asyncio.wait_for(r.readline(), left)
                    except asyncio.TimeoutError:
                        break
                    if not line:
                        stats["ended_by_server"].append(time.time())
                        break
                    if line.startswith(b"event: live"):
                        stats["live_events"] += 1
                        b = str(int(time.time()) // 10 * 10)
                        stats["live_by_10s"][b] = stats["live_by_10s"].get(b, 0) + 1
                    elif line.startswith(b"event: map"):
                        stats["map_events"] += 1
        except Exception as e:  # noqa: BLE001
            stats["read_errors"].append([time.time(), str(e)])
        w.close()
        try:
            await w.wait_closed()
        except Exception:  # noqa: BLE001
            pass
        await asyncio.sleep(rnd.uniform(0.5, 2))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--min-stay", type=float, default=20)
    ap.add_argument("--max-stay", type=float, default=120)
    a = ap.parse_args()
    stats = {"connections": 0, "live_events": 0, "map_events": 0, "live_by_10s": {}, "bad_answers": [],
             "connect_errors": [], "read_errors": [], "ended_by_server": []}
    deadline = time.monotonic() + a.seconds
    await asyncio.gather(*(client(n, a, stats, deadline) for n in range(a.clients)))
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
