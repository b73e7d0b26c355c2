#!/usr/bin/env bash
# Builds what is installed elsewhere:
#   scripts/package.sh wheel   the Python package (py-bindings/, maturin, one abi3 wheel for
#                              CPython 3.9+) into target/wheels/
#   scripts/package.sh deb     the Debian package (cargo-deb) into target/debian/
# MISPDASH_WHEEL_PROFILE=dev builds the wheel without optimisations (what the tests use: a
# minute instead of several) into target/wheels-dev/, so that target/wheels/ only ever holds
# a release wheel; the default is release.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
step() { printf '== package: %s\n' "$*"; }

build_venv() {
    # maturin from PyPI, in a venv of its own (never the system's Python).
    local venv="$ROOT/.mispdash/build-venv"
    if [ ! -x "$venv/bin/maturin" ]; then
        step "installing maturin into $venv (pip)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.16,<2" >&2
    fi
    printf '%s\n' "$venv/bin/maturin"
}

case "${1:-}" in
wheel)
    MATURIN="$(build_venv)"
    PROFILE="${MISPDASH_WHEEL_PROFILE:-release}"
    FLAGS=()
    [ "$PROFILE" = release ] && FLAGS+=(--release)
    OUT=target/wheels
    [ "$PROFILE" = release ] || OUT="target/wheels-$PROFILE"
    step "building the wheel ($PROFILE profile; the first release build takes several minutes)"
    rm -f "$OUT"/mispdash-*.whl
    # --compatibility linux: the module links the system's libzmq (Debian: libzmq5), which
    # manylinux wheels may not; the wheel is for machines with it.
    "$MATURIN" build "${FLAGS[@]}" -m py-bindings/Cargo.toml --compatibility linux \
        -i "$(command -v python3)" -o "$OUT"
    step "wheel: $(ls "$OUT"/mispdash-*.whl)"
    ;;
deb)
    if ! command -v cargo-deb >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-deb" ]; then
        step "installing cargo-deb (cargo install; a few minutes the first time)"
        cargo install --locked --quiet cargo-deb
    fi
    step "building the web pages and the release binary (several minutes the first time)"
    bash scripts/setup.sh run >/dev/null
    cargo build --release -p mispdash
    step "man pages and shell completions from the binary"
    rm -rf target/release/debian-assets
    mkdir -p target/release/debian-assets/man target/release/debian-assets/completions
    target/release/mispdash man --dir target/release/debian-assets/man
    # Debian ships man pages compressed (-n: no name or time inside, a reproducible build).
    gzip -9n target/release/debian-assets/man/*.1
    target/release/mispdash completions bash >target/release/debian-assets/completions/mispdash.bash
    target/release/mispdash completions zsh >target/release/debian-assets/completions/_mispdash
    target/release/mispdash completions fish >target/release/debian-assets/completions/mispdash.fish
    step "cargo deb"
    cargo deb -p mispdash --no-build
    step "deb: $(ls target/debian/mispdash_*.deb)"
    ;;
*)
    echo "usage: scripts/package.sh wheel|deb" >&2
    exit 2
    ;;
esac
