#!/usr/bin/env python3
"""Writes the Redis protocol that pushes a JSON Lines corpus (gen_corpus.py format) onto the
buffer list exactly as a subscriber would (frame as MISP sends it, envelope as json.dumps), for
`redis-cli --pipe`. Usage: fill_buffer.py CORPUS [--name misp1] [--list bufferList] [--sentinel]"""
import argparse, base64, json, sys

def frames(path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            if "frame_b64" in d:
                yield base64.b64decode(d["frame_b64"])
            elif "raw" in d:
                yield (d["topic"] + " " + d["raw"]).encode()
            else:
                body = json.dumps(d["payload"], ensure_ascii=False, separators=(",", ":"))
                yield (d["topic"] + " " + body).encode()

def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

ap = argparse.ArgumentParser()
ap.add_argument("corpus")
ap.add_argument("--name", default="misp1")
ap.add_argument("--list", default="bufferList")
ap.add_argument("--sentinel", action="store_true")
a = ap.parse_args()
w = sys.stdout.buffer
n = 0
def push(frame):
    env = json.dumps({"zmq_name": a.name, "content": frame.decode("utf-8")})
    w.write(resp("LPUSH", a.list, env))
for f in frames(a.corpus):
    push(f)
    n += 1
if a.sentinel:
    push(b'misp_json_self {"status":"sentinel","uptime":-1}')
    n += 1
sys.stderr.write("%d messages\n" % n)
