#!/usr/bin/env bash
# What each family of keys holds in a Redis (not a test): for every key of every database that has keys,
# MEMORY USAGE, summed by family (the key up to its first ':', so `LOGIN_TIMESTAMP:<org>` and
# `CONTRIB_DAY:<day>` each count as one). Prints "db<TAB>family<TAB>bytes<TAB>keys" lines, for
# the soak's attribution of Redis's growth (bench/soak.sh).
#   bench/redis_families.sh PORT
set -euo pipefail
PORT="$1"
for db in $(redis-cli -p "$PORT" info keyspace | sed -n 's/^db\([0-9]*\):.*/\1/p'); do
    redis-cli -p "$PORT" -n "$db" --scan >"/tmp/redis_families.$$"
    # One redis-cli for every key's MEMORY USAGE (commands read from stdin, one reply a line).
    sed 's/"/\\"/g; s/^/MEMORY USAGE "/; s/$/" SAMPLES 0/' "/tmp/redis_families.$$" \
        | redis-cli -p "$PORT" -n "$db" \
        | paste "/tmp/redis_families.$$" - \
        | awk -F'\t' -v db="$db" '{f=$1; i=index(f, ":"); if (i) f=substr(f, 1, i) "*"; b[f]+=$2; n[f]++}
              END {for (f in b) printf "%s\t%s\t%d\t%d\n", db, f, b[f], n[f]}'
done
rm -f "/tmp/redis_families.$$"
