#!/usr/bin/env python3
"""Times a buffer drain the way ../shared/corpus/original-baseline.md (step 4) does: subscribed
to the live channel before the consumer starts, it polls `LLEN` every 50 ms on one connection
until the buffer is below its starting length (start), then waits for the sentinel keepalive
(`"log": "[-1]"`) on the live channel (end). One long-lived process with raw sockets that scans
the subscription's byte stream for the sentinel instead of parsing every publication, so the
measurement itself costs little CPU on the two cores being measured (parsing each of 50,000
publications in Python took over a second of CPU).

Prints "READY" once subscribed, then "<start> <end>" (epoch seconds) when the sentinel is seen.
Usage: drain_watch.py PORT TOTAL [--db 3] [--list bufferList] [--channel 1]"""
import argparse, os, socket, sys, time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise SystemExit("Redis closed the connection")
            self.buf += chunk
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise SystemExit("Redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in (b"+", b"-"):
            return rest
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise SystemExit("unexpected reply %r" % l)

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()


ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("total", type=int)
ap.add_argument("--db", default="3")
ap.add_argument("--list", default="bufferList")
ap.add_argument("--channel", default="1")
a = ap.parse_args()

sub = Conn(a.port)
sub.call("SUBSCRIBE", a.channel)
poll = Conn(a.port)
poll.call("SELECT", a.db)
print("READY", flush=True)
while poll.call("LLEN", a.list) >= a.total:
    time.sleep(0.05)
start = time.time()
# Only the sentinel matters: the raw stream is searched for it rather than parsed reply by
# reply, so the watcher's own CPU (it shares the two measured cores) stays small; the overlap
# keeps a marker split across two reads.
MARK = b'"log": "[-1]"'
tail = bytes(sub.buf)
while MARK not in tail:
    chunk = sub.s.recv(1 << 20)
    if not chunk:
        raise SystemExit("Redis closed the connection")
    tail = tail[-len(MARK):] + chunk
end = time.time()
sys.stderr.write("watcher cpu %.2f s\n" % sum(os.times()[:2]))
print("%.6f %.6f" % (start, end), flush=True)
