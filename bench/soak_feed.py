#!/usr/bin/env python3
"""The soak's MISP stand-in (bench/soak.sh; not MISP, which cannot run here): publishes the
lines of a gen_corpus.py corpus, in a loop, on a ZeroMQ XPUB socket at a steady rate, as MISP's
publisher frames them ("<topic> <json>"). It publishes nothing while --pause-file exists (the harness
pauses it around a planned subscriber restart) or while no subscriber is connected (its XPUB
socket sees subscriptions come and go): what ZeroMQ drops with nobody subscribed is not the
dashboard's to keep, so every message sent is one the dashboard must account for. When the
pause file says "resubscribe" (the harness restarts the subscriber inside the pause), it resumes
only once a subscription arrived after the pause began: the old subscriber's unsubscription
can reach the socket after the pause ends, and counting it as still there would send into
nothing (one message lost in a soak slowed by heaptrack was most likely that). It writes
how many messages it sent to --count-file every second and at exit."""
import argparse
import json
import os
import signal
import time

import zmq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--pause-file", required=True)
    ap.add_argument("--count-file", required=True)
    a = ap.parse_args()
    frames = []
    with open(a.corpus, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if "payload" in d:
                body = json.dumps(d["payload"], ensure_ascii=False, separators=(",", ":"))
            elif "raw" in d:
                body = d["raw"]
            else:
                continue
            frames.append((d["topic"] + " " + body).encode("utf-8"))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    sock.setsockopt(zmq.SNDHWM, 0)
    subscribers = 0
    # A pause that spans a subscriber restart: resume only after a fresh subscription.
    need_fresh = False
    in_pause = False
    sock.bind(a.bind)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    sent = 0
    period = 1.0 / a.rate
    nxt = time.monotonic()
    last_write = 0.0

    def write_count():
        tmp = a.count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(sent))
        os.replace(tmp, a.count_file)

    while not stop:
        now = time.monotonic()
        if now - last_write >= 1:
            write_count()
            last_write = now
        while True:
            try:
                ev = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if ev[:1] == b"\x01":
                subscribers += 1
                need_fresh = False
            elif ev[:1] == b"\x00":
                subscribers = max(0, subscribers - 1)
        paused = os.path.exists(a.pause_file)
        if paused and not in_pause:
            try:
                with open(a.pause_file, encoding="utf-8") as f:
                    need_fresh = f.read().strip() == "resubscribe"
            except OSError:
                pass
        in_pause = paused
        if subscribers == 0 or paused or need_fresh:
            time.sleep(0.05)
            nxt = time.monotonic()
            continue
        if now < nxt:
            time.sleep(min(nxt - now, 0.05))
            continue
        sock.send(frames[sent % len(frames)])
        sent += 1
        nxt += period
    write_count()
    sock.close(linger=1000)
    ctx.term()


if __name__ == "__main__":
    main()
