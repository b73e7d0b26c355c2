#!/usr/bin/env python3
"""A stand-in for MISP's REST API (MISP cannot run here), for bench/backfill.sh: --events
published events of --attributes attributes each, spread over the --days days before --now,
answered by `/events/restSearch` a page at a time (with `X-Result-Count`), and no sightings.
Any API key is accepted. Standard library only.

  bench/misp_rest_standin.py --port P --events 5000 --attributes 50 --now EPOCH
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--attributes", type=int, default=50)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--now", type=int, required=True)
    a = ap.parse_args()
    start = a.now - a.days * 86400
    categories = ["Network activity", "Payload delivery", "External analysis", "Artifacts dropped"]
    orgs = ["CIRCL", "CERT-EU", "ORG-3", "ORG-4", "ORG-5"]
    events = []
    for i in range(a.events):
        at = str(start + i * a.days * 86400 // a.events)
        attributes = []
        for n in range(a.attributes):
            c = categories[n % 4]
            value = "198.51.%d.%d" % (i % 250, n) if c == "Network activity" else "%032x" % (i * 1000 + n)
            attributes.append({
                "id": str(i * 1000 + n), "event_id": str(i), "object_id": "0", "category": c,
                "type": "ip-dst" if c == "Network activity" else "md5", "value": value,
                "timestamp": at, "to_ids": True, "distribution": "5", "sharing_group_id": "0",
                "comment": "", "uuid": "a-%d-%d" % (i, n), "Tag": []})
        events.append({"Event": {
            "id": str(i), "uuid": "e-%06d" % i, "info": "bench event %d" % (i % 100),
            "timestamp": at, "publish_timestamp": at, "published": True, "distribution": "3",
            "sharing_group_id": "0", "org_id": "1", "orgc_id": "1",
            "Orgc": {"id": "1", "name": orgs[i % 5]},
            "Tag": [{"id": "1", "name": "tlp:green", "colour": "#33ff00"}],
            "Attribute": attributes, "Object": []}})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            items = []
            if self.path.startswith("/events/restSearch"):
                limit, page = int(body.get("limit", 100)), int(body.get("page", 1))
                items = events[(page - 1) * limit: page * limit]
            data = json.dumps({"response": items}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Result-Count", str(len(events) if self.path.startswith("/events") else 0))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
