#!/usr/bin/env bash
# Sets up everything the test suite needs (Debian packages, Python tools, test databases) and
# runs it: formatting, lints, unit tests and the integration tests against real Redis, ZeroMQ
# and the recorded behaviour of the original dashboard in ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace -- --test-threads="${MISPDASH_TEST_THREADS:-2}"
