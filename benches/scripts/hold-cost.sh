#!/usr/bin/env bash
# What one held connection costs each process while `hold` sets connections up: CPU time per
# connection of the handler, the connmgr, the load generator's backend and its client, and
# context switches per connection of every thread of those processes, over the setup phase
# only (the closes after the measurement are left out). Repeated rounds against Holdfast and,
# optionally, Pushpin, each round with a freshly started proxy, so A/B runs can alternate.
#
# Usage: benches/scripts/hold-cost.sh
#   ROUNDS=3             rounds (each runs every kind in KINDS)
#   KINDS=holdfast       the proxies, in order: holdfast and/or pushpin
#   HOLD_N=16000         connections per round
#   CONCURRENCY=64       connections being opened at once
#   HF_BIN_DIR=DIR       Holdfast binaries to run (default target/release; SKIP_BUILD as in lib.sh)
#   SWITCHES=1           also print context switches per connection, per thread
#   BASE_PORT=31000      first port of the plan (lib.sh)
#
# One line per round and kind: setup rate, KiB per held connection, CPU µs per connection.
# Pushpin's processes are not split out (its CPU columns read 0): compare its rate only.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
BASE_PORT=${BASE_PORT:-31000}
ROUNDS=${ROUNDS:-3}
HOLD_N=${HOLD_N:-16000}
CONCURRENCY=${CONCURRENCY:-64}

source "$(dirname "$0")/lib.sh"
bench_prepare
if [ -n "${HF_BIN_DIR:-}" ]; then
  LG=$HF_BIN_DIR/holdfast-loadgen
  HF=$HF_BIN_DIR/holdfast
fi
bench_init hf-hold-cost

"$LG" backend --listen "127.0.0.1:$backend_port" >"$work/backend.out" 2>&1 &
backend_pid=$!
pids+=($backend_pid)
wait_http "http://127.0.0.1:$backend_port/plain"

# CPU ticks (utime + stime) of a process; 0 when there is none.
ticks() { [ -n "${1:-}" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# "tid:name switches" for every thread of the given processes.
switches() {
  local pid t
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      echo "${t##*/}:$(tr ' ' _ <"$t/comm") $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")"
    done
  done
}

for round in $(seq "$ROUNDS"); do
  for kind in ${KINDS:-holdfast}; do
    rm -rf "$work/proxy"
    gen_conf "$work/proxy" "$kind" none hc- ""
    start_proxy "$work/proxy" "$kind"
    handler=$(pgrep -x holdfast-handle || true)
    connmgr=$(pgrep -x holdfast-connmg || true)
    "$LG" hold --url "http://127.0.0.1:$http_port" --concurrency "$CONCURRENCY" -n "$HOLD_N" \
      --pid-tree "$proxy_pid" >"$work/hold.json" 2>"$work/hold.err" &
    client_pid=$!
    procs=($backend_pid $client_pid $handler $connmgr)
    before=("$(ticks "$handler")" "$(ticks "$connmgr")" "$(ticks $backend_pid)" "$(ticks $client_pid)")
    switches "${procs[@]}" | sort >"$work/switches.0"
    # The client reports "N held" once every connection is set up, then idles before measuring.
    until grep -q " held" "$work/hold.err" 2>/dev/null || ! kill -0 $client_pid 2>/dev/null; do
      sleep 0.2
    done
    after=("$(ticks "$handler")" "$(ticks "$connmgr")" "$(ticks $backend_pid)" "$(ticks $client_pid)")
    switches "${procs[@]}" | sort >"$work/switches.1"
    wait $client_pid || true
    python3 - "$work/hold.json" "$kind" "$round" "$HOLD_N" "$(getconf CLK_TCK)" \
      "${before[*]}" "${after[*]}" <<'PY'
import json, sys
path, kind, rnd, n, hz, before, after = sys.argv[1:]
r = json.load(open(path))
n, hz = int(n), int(hz)
us = [(int(float(b1)) - int(float(b0))) * 1e6 / hz / n
      for b0, b1 in zip(before.split(), after.split())]
lat = r["open_latency_us"]
print(f"round {rnd} {kind:8} setup {r['setup_rate']:>8.0f} conn/s  failed {r['failed']}  "
      f"{r['kib_per_conn']:.2f} KiB/conn  open p50/p99 {lat['p50']}/{lat['p99']} us  "
      f"CPU us/conn: handler {us[0]:.1f} connmgr {us[1]:.1f} backend {us[2]:.1f} "
      f"client {us[3]:.1f}")
PY
    if [ -n "${SWITCHES:-}" ]; then
      join "$work/switches.0" "$work/switches.1" |
        awk -v n="$HOLD_N" '$3 - $2 > n / 100 { printf "    %-26s %.2f switches/conn\n", $1, ($3 - $2) / n }'
    fi
    stop_proxy
  done
done
