#!/usr/bin/env python3
"""Writes one large published MISP event (`misp_json`, the message MISP sends each time an event
is published) as a JSON Lines corpus line (gen_corpus.py format), optionally followed by a small
attribute message. Used by the large-event test and by bench/big_event.sh.

    big_event.py --attributes 20000 --bytes 10000000 [--objects 50] [--then-small] -o FILE

The attributes are spread over the categories and types MISP uses most (IPs among them, so
geolocation runs), tagged, and padded with a comment so the whole message is about --bytes long.
"""
import argparse, json, random, sys, uuid

CATS = [
    ("Network activity", "ip-dst"),
    ("Network activity", "domain"),
    ("Payload delivery", "md5"),
    ("Payload delivery", "filename"),
    ("External analysis", "url"),
    ("Other", "comment"),
]
TAGS = [
    {"id": "1", "name": "tlp:amber", "colour": "#FFC000"},
    {"id": "7", "name": "kill-chain:Delivery", "colour": "#7a4500"},
]


def attribute(rng, i, event_id, ts, pad, object_id="0"):
    cat, typ = CATS[i % len(CATS)]
    if typ == "ip-dst":
        value = "%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    elif typ == "md5":
        value = "%032x" % rng.getrandbits(128)
    else:
        value = "v%d.example-%d.test" % (i, rng.randint(0, 99999))
    return {
        "id": str(100000 + i), "type": typ, "category": cat, "to_ids": True,
        "uuid": str(uuid.UUID(int=rng.getrandbits(128))), "event_id": event_id,
        "distribution": "5", "timestamp": str(ts), "comment": pad, "sharing_group_id": "0",
        "deleted": False, "disable_correlation": False, "object_id": object_id,
        "object_relation": None, "first_seen": None, "last_seen": None, "value": value,
        "Tag": TAGS[: i % 3],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attributes", type=int, default=20000)
    ap.add_argument("--bytes", type=int, default=10_000_000, help="approximate message size")
    ap.add_argument("--objects", type=int, default=0, help="objects of 2 attributes each")
    ap.add_argument("--ts", type=int, default=1795174470)
    ap.add_argument("--org", default="Big Event CERT")
    ap.add_argument("--then-small", action="store_true", help="append one small attribute message")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    rng = random.Random(7)
    base = 430  # an attribute's JSON without its comment, about
    pad_len = max(0, a.bytes // max(1, a.attributes + 2 * a.objects) - base)
    pad = ("large event padding " * (pad_len // 20 + 1))[:pad_len]
    event_id = "90001"
    org = {"id": "9", "name": a.org, "uuid": "8f1f4a1c-0000-4000-8000-000000000009"}
    attrs = [attribute(rng, i, event_id, a.ts, pad) for i in range(a.attributes)]
    objects = []
    for o in range(a.objects):
        objects.append({
            "id": str(5000 + o), "name": "domain-ip", "meta-category": "network",
            "event_id": event_id, "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": str(a.ts), "deleted": False,
            "Attribute": [attribute(rng, a.attributes + 2 * o + k, event_id, a.ts, pad, str(5000 + o)) for k in range(2)],
        })
    event = {
        "id": event_id, "orgc_id": "9", "org_id": "9", "date": "2026-11-20",
        "threat_level_id": "1", "info": "Large published event (%d attributes)" % a.attributes,
        "published": True, "uuid": "7d3a2c10-0000-4000-8000-000000090001", "analysis": "2",
        "distribution": "1", "timestamp": str(a.ts), "sharing_group_id": "0",
        "publish_timestamp": str(a.ts), "Orgc": org, "Org": org,
        "Attribute": attrs, "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [],
        "Object": objects, "Tag": TAGS,
    }
    out = open(a.output, "w", encoding="utf-8") if a.output != "-" else sys.stdout
    out.write(json.dumps({"topic": "misp_json", "payload": {"Event": event}}) + "\n")
    if a.then_small:
        small = attribute(rng, 0, "90002", a.ts, "")
        small["value"] = "after.big-event.test"
        small["category"], small["type"] = "Other", "comment"
        payload = {"Attribute": small, "Event": {"id": "90002", "info": "after the large event",
                                                 "Orgc": {"name": "Small After CERT"}}}
        out.write(json.dumps({"topic": "misp_json_attribute", "payload": payload}) + "\n")
    out.close()


if __name__ == "__main__":
    main()
