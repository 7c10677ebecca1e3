#!/usr/bin/env bash
# Runs every check and test of Holdfast on a fresh machine: installs what the tests need, checks
# formatting and lints, builds the release binaries the end-to-end tests start, runs the Rust
# tests, then the end-to-end tests driven by real client libraries (Python gripcontrol, httpx,
# sseclient, websockets, wscat, Playwright with Chromium) from tests/python, then a short bounded
# run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
cargo test --release --workspace

# Python client libraries in a virtualenv under target/ (created once, reused).
if [ ! -x target/pyenv/bin/python ]; then
  python3 -m venv target/pyenv
fi
target/pyenv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
(cd tests/python && ../../target/pyenv/bin/python -m pytest -q -p no:cacheprovider)

# A bounded run of every fuzz target (docs/fuzzing.md): FUZZ_SECS seconds each, default 10.
tools/fuzz.sh
