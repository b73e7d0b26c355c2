#!/usr/bin/env bash
# Sets up everything the test suite needs (Debian packages, Python tools, test databases) and
# runs it: formatting, lints, unit tests and the integration tests against real Redis, ZeroMQ
# and the recorded behaviour of the original dashboard in ../shared; then the Python package
# (wheel, venvs, Apache + mod_wsgi), apache/README.md's steps on a fresh Debian, and the Debian
# package (built, installed, removed).
set -euo pipefail
cd "$(dirname "$0")/.."
# One build from scratch: incremental compilation's caches would only double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The suite needs about 15 GB (the builds, Debian trees for the Apache and package tests); say
# so first rather than fail mid-run with "No space left on device".
free_kb="$(df -Pk . | awk 'NR == 2 { print $4 }')"
echo "== disk: $((free_kb / 1024 / 1024)) GB free where the suite builds"
if [ "$free_kb" -lt $((15 * 1024 * 1024)) ]; then
  echo "warning: less than 15 GB free here; the builds and test trees may fill the disk" >&2
fi
bash scripts/setup.sh test
echo "== web pages: type check, lint and format check, unit tests (core/web)"
npm run --prefix core/web --silent check
npm run --prefix core/web --silent lint
npm run --prefix core/web --silent test
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
cargo test --workspace -- --test-threads="${MISPDASH_TEST_THREADS:-2}" 2>&1 | tee "$LOG"
# cargo prints one summary per test binary (the last one is often the empty doc-test run);
# close with the total so the whole suite is read as one result.
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$LOG"
echo "== python package: wheel, venvs, pytest (Apache + mod_wsgi end to end)"
bash scripts/python-tests.sh
echo "== apache/README.md's steps on a fresh Debian (debootstrap), the dashboard through that Apache"
bash scripts/apache-readme-tests.sh
echo "== debian package: build, install, service, remove, purge"
bash scripts/deb-tests.sh
# After the package: its build left the release binary, which follows the soak's load where
# the debug build falls behind on a busy machine.
echo "== soak, 2-minute version (bench/soak.sh: feed, streams, routes, a Redis and a subscriber restart; no loss, no error)"
MISPDASH_BIN=target/release/mispdash CLIENTS=50 RATE=100 SAMPLE=10 WARM=30 bash bench/soak.sh 2
