#!/usr/bin/env bash
# Runs every check and test of Holdfast on a fresh machine: installs what the tests need, checks
# formatting and lints, builds the release binaries the end-to-end tests start, runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
cargo test --release --workspace
