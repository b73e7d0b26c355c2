#!/usr/bin/env python3
"""A stand-in for MISP (which cannot run here), for the access-control benchmark: it answers
the two API calls mispdash makes at an API-key login, `/users/view/me.json` and
`/sharing_groups.json`, as MISP shapes them, for --users users spread over --orgs
organisations and --groups sharing groups. Standard library only.

User i has the API key "bench" + i zero-padded to 40 characters and belongs to organisation
1 + i % orgs; user 0 is a site admin. Sharing group g (1..groups) holds organisations g,
g + groups and 1 + g % orgs. `--describe` prints that world as JSON (for the clients and the
expected counts) and exits.

  bench/misp_standin.py --port 8443 [--users 50 --orgs 10 --groups 5]
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def world(users, orgs, groups):
    sgs = {}
    for g in range(1, groups + 1):
        sgs[g] = sorted({1 + (g - 1) % orgs, 1 + (g - 1 + groups) % orgs, 1 + g % orgs})
    return {
        "users": [
            {"key": "bench%035d" % i, "id": 100 + i, "org": 1 + i % orgs, "site_admin": i == 0,
             "email": "user%d@org%d.example" % (i, 1 + i % orgs)}
            for i in range(users)
        ],
        "sharing_groups": {str(g): o for g, o in sgs.items()},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--orgs", type=int, default=10)
    ap.add_argument("--groups", type=int, default=5)
    ap.add_argument("--describe", action="store_true")
    a = ap.parse_args()
    w = world(a.users, a.orgs, a.groups)
    if a.describe:
        print(json.dumps(w))
        return
    by_key = {u["key"]: u for u in w["users"]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            u = by_key.get(self.headers.get("Authorization", ""))
            if u is None:
                return self.answer(403, {"message": "Authentication failed"})
            org = str(u["org"])
            if self.path.split("?")[0] == "/users/view/me.json":
                return self.answer(200, {
                    "User": {"id": str(u["id"]), "email": u["email"], "org_id": org, "disabled": False},
                    "Role": {"name": "admin" if u["site_admin"] else "User",
                             "perm_site_admin": u["site_admin"]},
                    "Organisation": {"id": org, "name": "Org " + org},
                    "UserSetting": {"dashboard_access": True},
                })
            if self.path.split("?")[0] == "/sharing_groups.json":
                return self.answer(200, {"response": [
                    {"SharingGroup": {"id": g, "name": "SG " + g, "active": True},
                     "SharingGroupOrg": [{"org_id": str(o)} for o in orgs],
                     "SharingGroupServer": [{"all_orgs": False, "server_id": "0"}]}
                    for g, orgs in w["sharing_groups"].items()
                    if u["site_admin"] or u["org"] in orgs
                ]})
            return self.answer(404, {"message": "Not found"})

    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
