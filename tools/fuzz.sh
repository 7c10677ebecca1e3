#!/usr/bin/env bash
# Bounded fuzzing run of every cargo-fuzz target in fuzz/ (see docs/fuzzing.md).
#
# Installs cargo-fuzz if missing, builds all targets once, then runs each for FUZZ_SECS seconds
# (default 10) starting from its checked-in seeds (fuzz/seeds/<target>) plus whatever corpus a
# previous run left in fuzz/corpus/<target>. Prints one line per target and exits non-zero if
# any target crashed (the crashing input is in fuzz/artifacts/<target>/).
#
# Usage: tools/fuzz.sh [target...]      (default: every target)
# Env:   FUZZ_SECS  seconds per target (default 10)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs="${FUZZ_SECS:-10}"

if ! command -v cargo-fuzz >/dev/null 2>&1 && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi

# No AddressSanitizer: every Holdfast crate forbids `unsafe`, and ASan doubles both the build
# and the run time. Debug assertions stay on so integer overflow panics.
flags=(--release --debug-assertions --sanitizer none)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

start=$(date +%s)
echo "fuzz: building ${#targets[@]} targets"
(cd fuzz && cargo +nightly fuzz build "${flags[@]}" >/dev/null 2>fuzz-build.log) || {
    cat fuzz/fuzz-build.log >&2
    rm -f fuzz/fuzz-build.log
    echo "fuzz: build failed" >&2
    exit 1
}
rm -f fuzz/fuzz-build.log
echo "fuzz: built in $(( $(date +%s) - start ))s"

failed=()
logdir="$(mktemp -d)"
for t in "${targets[@]}"; do
    seeds="$root/fuzz/seeds/$t"
    corpus="$root/fuzz/corpus/$t"
    mkdir -p "$corpus"
    log="$logdir/$t.log"
    # The writable corpus comes first (libFuzzer adds new inputs there); seeds are read only.
    if (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$t" "$corpus" "$seeds" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) \
            >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
        printf 'fuzz: %-14s ok    %8s runs  cov %s\n' "$t" "$runs" "$cov"
    else
        printf 'fuzz: %-14s CRASH (see below; input in fuzz/artifacts/%s/)\n' "$t" "$t"
        grep -E 'panicked|SUMMARY|Test unit written|ERROR' "$log" | head -5 | sed 's/^/    /'
        failed+=("$t")
    fi
done
rm -rf "$logdir"

echo "fuzz: ${#targets[@]} targets, ${#failed[@]} failed, $(( $(date +%s) - start ))s in all"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashed: ${failed[*]}" >&2
    exit 1
fi
