#!/usr/bin/env python3
"""The access-control benchmark's feed: a ZeroMQ publisher (as MISP's) sending
`misp_json_attribute` messages at --rate per second for --duration seconds, with owners,
distributions and sharing groups mixed as on a shared MISP. Each attribute's value is
"aclp-<sequence>-<send time in ns>", so a client can tell how long it took to reach it.
Writes to --facts the JSON list of what each message said (owner organisation, event and
attribute distribution and sharing group), from which the expected rows per user follow.

  bench/acl_feed.py --bind tcp://127.0.0.1:PORT --rate 100 --duration 60 --facts F --world W
"""
import argparse
import json
import random
import time

import zmq

# Event distributions as a shared MISP holds them: organisation only, this community,
# connected communities, all, sharing group; attributes mostly inherit (5).
EVENT_MIX = [0] * 25 + [1] * 15 + [2] * 10 + [3] * 25 + [4] * 25
ATTRIBUTE_MIX = [5] * 70 + [0] * 10 + [3] * 10 + [4] * 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--world", required=True, help="bench/misp_standin.py --describe's output")
    ap.add_argument("--seed", type=int, default=19)
    a = ap.parse_args()
    world = json.load(open(a.world))
    orgs = sorted({u["org"] for u in world["users"]})
    groups = sorted(int(g) for g in world["sharing_groups"])
    rnd = random.Random(a.seed)
    ctx = zmq.Context()
    s = ctx.socket(zmq.XPUB)
    s.setsockopt(zmq.SNDHWM, 0)
    s.bind(a.bind)
    s.recv()  # a subscriber's subscription: nothing is lost to ZeroMQ's slow joiner
    time.sleep(0.5)
    facts = []
    total = int(a.rate * a.duration)
    t0 = time.monotonic()
    for i in range(total):
        delay = t0 + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        owner = rnd.choice(orgs)
        ed, ad = rnd.choice(EVENT_MIX), rnd.choice(ATTRIBUTE_MIX)
        eg = rnd.choice(groups) if ed == 4 else 0
        ag = rnd.choice(groups) if ad == 4 else 0
        event = 5000 + i // 5
        payload = {
            "action": "add",
            "Attribute": {"id": str(100000 + i), "event_id": str(event), "object_id": "0",
                          "category": "Other", "type": "text",
                          "value": "aclp-%d-%d" % (i, time.time_ns()), "comment": "",
                          "timestamp": str(int(time.time())), "to_ids": False,
                          "distribution": str(ad), "sharing_group_id": str(ag), "Tag": []},
            "Event": {"id": str(event), "org_id": str(owner), "orgc_id": str(owner),
                      "info": "bench event %d" % event, "distribution": str(ed),
                      "sharing_group_id": str(eg), "published": True,
                      "Orgc": {"name": "Org %d" % owner}},
        }
        s.send(("misp_json_attribute " + json.dumps(payload)).encode())
        facts.append({"owner": owner, "ed": ed, "eg": eg, "ad": ad, "ag": ag})
    json.dump(facts, open(a.facts, "w"))
    time.sleep(1)
    s.close(linger=5000)


if __name__ == "__main__":
    main()
