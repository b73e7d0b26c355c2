#!/usr/bin/env python3
"""Turn a redis_dump.py file (e.g. ../shared/corpus/seed2.redis.json) into Redis protocol
commands on stdout, for `redis-cli --pipe`: the HTTP benchmark serves the recorded keyspace.

  bench/http_load_keyspace.py seed2.redis.json | redis-cli -p PORT --pipe
"""
import json
import sys


def main():
    dump = json.load(open(sys.argv[1], encoding="utf-8"))
    out = sys.stdout.buffer

    def cmd(*args):
        args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        out.write(b"*%d\r\n" % len(args))
        for a in args:
            out.write(b"$%d\r\n%s\r\n" % (len(a), a))

    for db, keys in dump["dbs"].items():
        cmd("SELECT", db)
        for key, v in keys.items():
            t, val = v["type"], v["value"]
            if t == "string":
                cmd("SET", key, val)
            elif t == "list":
                cmd("RPUSH", key, *val)
            elif t == "set":
                cmd("SADD", key, *val)
            elif t == "zset":
                args = []
                for member, score in val:
                    args += [repr(score), member]
                cmd("ZADD", key, *args)
            elif t == "hash":
                args = []
                for f, x in val.items():
                    args += [f, x]
                cmd("HSET", key, *args)
            if v.get("ttl_days"):
                cmd("EXPIRE", key, int(v["ttl_days"]) * 86400)


if __name__ == "__main__":
    main()
