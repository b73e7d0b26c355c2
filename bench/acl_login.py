#!/usr/bin/env python3
"""Signs each user of bench/misp_standin.py's world in to mispdash with their API key (the
login form with an empty username, as a user would) and prints the session cookies as a JSON
list, in the world's user order. Standard library only.

  bench/acl_login.py --port HTTP_PORT --world W > cookies.json
"""
import argparse
import http.client
import json
import re
import sys
import urllib.parse


def cookie(headers, name):
    for k, v in headers:
        if k.lower() == "set-cookie" and v.startswith(name + "="):
            return v.split(";", 1)[0]
    return None


def login(port, key):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    csrf = cookie(r.getheaders(), "csrf")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if r.status != 200 or not csrf or not token:
        sys.exit("the login page did not offer a form (status %d)" % r.status)
    body = urllib.parse.urlencode({"csrf_token": token.group(1), "username": "", "password": key})
    c.request("POST", "/login", body, {"Cookie": csrf, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    session = cookie(r.getheaders(), "session")
    if r.status != 303 or not session:
        sys.exit("login with key %s... failed: status %d" % (key[:8], r.status))
    return session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--world", required=True)
    a = ap.parse_args()
    world = json.load(open(a.world))
    print(json.dumps([login(a.port, u["key"]) for u in world["users"]]))


if __name__ == "__main__":
    main()
