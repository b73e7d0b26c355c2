#!/usr/bin/env bash
# The Python package's tests (py-bindings/tests) against the built wheel, each in a fresh venv:
# one of Debian's python3 (the interpreter mod_wsgi embeds: the Apache end-to-end tests run
# there) and one of the default python3 when that is another interpreter (pyenv's, say).
# Run by scripts/test.sh after the Rust suite; needs what `scripts/setup.sh test` installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
MISPDASH_WHEEL_PROFILE="${MISPDASH_WHEEL_PROFILE:-dev}" bash scripts/package.sh wheel
PROFILE="${MISPDASH_WHEEL_PROFILE:-dev}"
if [ "$PROFILE" = release ]; then WHEELS="$ROOT/target/wheels"; else WHEELS="$ROOT/target/wheels-$PROFILE"; fi
WHEEL="$(ls "$WHEELS"/mispdash-*.whl)"
# The standalone server the tests compare with.
cargo build --quiet -p mispdash

PYTHONS=(/usr/bin/python3)
DEFAULT="$(command -v python3)"
# The shared ZeroMQ replayer needs pyzmq, which scripts/setup.sh installs for this python3.
export MISPDASH_TOOLS_PYTHON="$DEFAULT"
if [ "$(readlink -f "$DEFAULT")" != "$(readlink -f /usr/bin/python3)" ]; then
    PYTHONS+=("$DEFAULT")
fi
status=0
for py in "${PYTHONS[@]}"; do
    name="$("$py" -c 'import sys; print("%s-%d.%d.%d" % ("debian" if sys.base_prefix == "/usr" else "default", *sys.version_info[:3]))')"
    venv="$ROOT/target/py-venvs/$name"
    echo "== python tests: $py ($name), fresh venv $venv"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" "pytest>=8,<10"
    # The venv is read by Apache's daemon user in the Apache tests.
    chmod -R a+rX "$venv"
    if ! (cd py-bindings/tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs); then
        status=1
    fi
done
exit $status
