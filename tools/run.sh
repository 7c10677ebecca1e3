#!/usr/bin/env bash
# Builds Holdfast (release) and starts it. Arguments go to the `holdfast` runner, e.g.
#   tools/run.sh --route "* localhost:3000"
# With no arguments Holdfast listens on :7999 and routes everything to its built-in test backend.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo build --release --bins
exec target/release/holdfast "$@"
