#!/usr/bin/env python3
"""A stand-in for MISP's ZeroMQ publisher (MISP itself cannot run here), behaving as MISP's
mispzmq.py does where the dashboard can tell: a PUB socket, optionally a PLAIN server; a
keep-alive (`misp_json_self {"status": ..., "uptime": N}`) only after 10 s without anything to
send; and the timestamps MISP sets to its own "now" (a saved attribute or event, a sighting)
set to now when the message is sent.

    misp_publisher.py --port P [--corpus FILE] [--rate N] [--loop] [--idle-keepalive 10]

With --loop the corpus is sent again and again (a busy MISP: no keep-alives at all)."""
import argparse, json, time
import zmq

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--corpus")
ap.add_argument("--rate", type=float, default=50.0)
ap.add_argument("--loop", action="store_true")
ap.add_argument("--idle-keepalive", type=float, default=10.0)
a = ap.parse_args()

sock = zmq.Context().socket(zmq.PUB)
sock.bind("tcp://127.0.0.1:%d" % a.port)
started = time.time()
lines = []
if a.corpus:
    with open(a.corpus, encoding="utf-8") as fh:
        lines = [json.loads(l) for l in fh if l.strip()]
    # Keep-alives are the publisher's own: sent by the idle rule below, not from the corpus.
    lines = [d for d in lines if d.get("topic") != "misp_json_self"]


def fresh(topic, payload):
    now = str(int(time.time()))
    if topic == "misp_json_attribute" and isinstance(payload.get("Attribute"), dict):
        payload["Attribute"]["timestamp"] = now
    elif topic == "misp_json_event" and isinstance(payload.get("Event"), dict):
        payload["Event"]["timestamp"] = now
    elif topic == "misp_json_sighting" and isinstance(payload.get("Sighting"), dict):
        payload["Sighting"]["date_sighting"] = now
    return payload


# Let subscribers connect before the first message (ZeroMQ's slow joiner).
time.sleep(1.0)
last_sent = time.time()
i = 0
while True:
    if i < len(lines) or (a.loop and lines):
        d = lines[i % len(lines)]
        i += 1
        if "payload" in d:
            body = json.dumps(fresh(d["topic"], d["payload"]), separators=(",", ":"))
            sock.send((d["topic"] + " " + body).encode())
            last_sent = time.time()
        time.sleep(1.0 / a.rate)
        continue
    if time.time() - last_sent >= a.idle_keepalive:
        uptime = int(time.time() - started)
        sock.send(('misp_json_self {"status": "ok", "uptime": %d}' % uptime).encode())
        last_sent = time.time()
    time.sleep(0.05)
