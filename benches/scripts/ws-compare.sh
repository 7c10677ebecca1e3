#!/usr/bin/env bash
# WebSockets: Holdfast vs Pushpin 1.36, end to end, with holdfast-loadgen, in one run. Both
# proxies reach the loadgen's embedded WebSocket-over-HTTP backend through one `over_http` route.
# Prints one Markdown table with ratios.
#
#   benches/scripts/ws-compare.sh
#
# Scenarios, per target, one after the other:
#   ws-echo        for each N in WS_ECHO_N: N clients on /echo, each sending a message and
#                  waiting for its echo, for WS_ECHO_SECS seconds: round trips/s, round-trip
#                  p50/p99, errors
#   ws-broadcast   for each N in WS_BCAST_N: N clients on /ws?channel=X (the backend answers OPEN
#                  with `Sec-WebSocket-Extensions: grip` and `c:{"type":"subscribe",…}`), then
#                  WS_BCAST_K `ws-message` items published over the HTTP publish API, one request
#                  at a time: deliveries/s, publish-to-receive p50/p99, lost/duplicated
#
# Parameters (environment):
#   WS_ECHO_N="100 1000 10000"  echo client counts
#   WS_ECHO_SECS=10        seconds of echo traffic
#   WS_ECHO_SIZE=32        echo message size in bytes
#   WS_ECHO_TIMEOUT=30     seconds one echo may take before its client gives up (an error)
#   WS_BCAST_N="1000 10000"  subscriber counts for ws-broadcast (10000 needs ~10k open files in
#                          the loadgen and ~20k in the proxy: the open-file soft limit is raised to
#                          the hard limit for everything this script starts)
#   WS_BCAST_K=20          messages per ws-broadcast run
#   WS_BCAST_ZMQ=          also run ws-broadcast with the messages pushed over ZeroMQ PUSH to the
#                          proxy's PULL socket: `burst` (all at once) and/or `paced` (at
#                          WS_BCAST_RATE messages/s, default 300), e.g. WS_BCAST_ZMQ="burst paced"
#   CONCURRENCY=64         WebSocket handshakes in flight at once (each is one backend POST)
#   SETTLE=2               seconds between "all subscribed" and the first publish
#   DRAIN=10               stop waiting for deliveries after this many seconds without one
#   HF_LIMITS=none         Holdfast's config: `none` (no message_rate/message_hwm) or `shipped`
#   HF_CONNMGR_WORKERS=    Holdfast's `[runner] connmgr_workers` (empty: the default, one per core)
#   TARGETS="holdfast pushpin-shipped pushpin-unlimited"   which proxies to run
#   BASE_PORT=29100        ports BASE_PORT+1..+99 on 127.0.0.1 are used
#   SKIP_BUILD=1           do not run cargo build
#   KEEP=1                 keep the work directory (JSON results, logs)
#
# Pushpin runs twice, as in compare.sh: with the config as shipped (message_rate=2500,
# message_hwm=25000: WebSocket deliveries are throttled and queued messages beyond the high-water
# mark are dropped, which shows as `lost`) and with those keys removed; "Pushpin-best" is the
# better of the two per row. Default runtime: ~8-10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

WS_ECHO_N=${WS_ECHO_N:-100 1000 10000}
WS_ECHO_SECS=${WS_ECHO_SECS:-10}
WS_ECHO_SIZE=${WS_ECHO_SIZE:-32}
WS_ECHO_TIMEOUT=${WS_ECHO_TIMEOUT:-30}
WS_BCAST_N=${WS_BCAST_N:-1000 10000}
WS_BCAST_K=${WS_BCAST_K:-20}
WS_BCAST_ZMQ=${WS_BCAST_ZMQ:-}
WS_BCAST_RATE=${WS_BCAST_RATE:-300}
CONCURRENCY=${CONCURRENCY:-64}
SETTLE=${SETTLE:-2}
DRAIN=${DRAIN:-10}
HF_LIMITS=${HF_LIMITS:-none}
TARGETS=${TARGETS:-holdfast pushpin-shipped pushpin-unlimited}
BASE_PORT=${BASE_PORT:-29100}

source "$(dirname "$0")/lib.sh"
bench_prepare
nofile=$(ulimit -n)
bench_init hf-ws-compare

"$LG" backend --listen "127.0.0.1:$backend_port" >"$work/backend.out" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$backend_port/plain"


scenarios() { # name url publish zmq-publish
  local name=$1 url=$2 publish=$3 zmq=$4
  local common=(--url "$url" --concurrency "$CONCURRENCY")
  for n in $WS_ECHO_N; do
    echo "== $name: ws-echo $n x ${WS_ECHO_SECS}s" >&2
    "$LG" ws-echo "${common[@]}" -n "$n" -d "$WS_ECHO_SECS" --size "$WS_ECHO_SIZE" \
      --echo-timeout "$WS_ECHO_TIMEOUT" >"$work/$name.ws-echo-$n.json" 2>>"$work/$name.err" || true
    sleep 1
  done
  for n in $WS_BCAST_N; do
    echo "== $name: ws-broadcast $n x $WS_BCAST_K" >&2
    "$LG" ws-broadcast "${common[@]}" --publish "$publish" --settle "$SETTLE" \
      --drain-timeout "$DRAIN" -n "$n" -k "$WS_BCAST_K" \
      >"$work/$name.ws-broadcast-$n.json" 2>>"$work/$name.err" || true
    sleep 1
    for mode in $WS_BCAST_ZMQ; do
      local how=(--publish "$zmq")
      [ "$mode" = paced ] && how+=(--rate "$WS_BCAST_RATE")
      echo "== $name: ws-broadcast $n x $WS_BCAST_K, ZeroMQ $mode" >&2
      "$LG" ws-broadcast "${common[@]}" "${how[@]}" --settle "$SETTLE" \
        --drain-timeout "$DRAIN" -n "$n" -k "$WS_BCAST_K" \
        >"$work/$name.ws-broadcast-$n-$mode.json" 2>>"$work/$name.err" || true
      sleep 1
    done
  done
}

run_proxy() { # name kind limits
  local name=$1 kind=$2 limits=$3 dir="$work/$1"
  gen_conf "$dir" "$kind" "$limits" wscmp- ",over_http"
  start_proxy "$dir" "$kind"
  scenarios "$name" "http://127.0.0.1:$http_port" "http://127.0.0.1:$pub_port" \
    "zmq:tcp://127.0.0.1:$pull_port"
  stop_proxy
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, open files $nofile; ws-echo {$WS_ECHO_N} x ${WS_ECHO_SECS}s (${WS_ECHO_SIZE} B), ws-broadcast {$WS_BCAST_N} x $WS_BCAST_K, concurrency $CONCURRENCY; $(date -u +%F)" >&2
for t in $TARGETS; do
  case $t in
    holdfast) run_proxy holdfast holdfast "$HF_LIMITS" ;;
    pushpin-shipped) run_proxy pushpin-shipped pushpin shipped ;;
    pushpin-unlimited) run_proxy pushpin-unlimited pushpin none ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

python3 - "$work" "$WS_ECHO_N" "$WS_BCAST_N" "$WS_BCAST_K" "$HF_LIMITS" "$WS_BCAST_ZMQ" \
  "$WS_BCAST_RATE" <<'PY'
import json, os, sys
work, echo_n, bcast_n, bcast_k, hf_limits, zmq_modes, rate = sys.argv[1:]
targets = ["holdfast", "pushpin-shipped", "pushpin-unlimited"]

def load(t, s):
    try:
        with open(os.path.join(work, f"{t}.{s}.json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None

def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d

# (label, scenario file, json path or a function of the result, higher is better, scale)
rows = []
for n in echo_n.split():
    p = f"ws-echo {n}"
    s = f"ws-echo-{n}"
    rows += [
        (f"{p}: round trips/s", s, "round_trips_per_sec", True, 1),
        (f"{p}: p50 ms", s, "latency_us.p50", False, 1e-3),
        (f"{p}: p99 ms", s, "latency_us.p99", False, 1e-3),
        (f"{p}: failed/disconnected/mismatched/unclean close", s,
         lambda d: f"{d.get('failed', 0)}/{d.get('disconnected', 0)}/{d.get('mismatched', 0)}/"
                   f"{d.get('connected', 0) - d.get('disconnected', 0) - d.get('clean_closes', 0)}",
         None, 1),
    ]
bcast = []
for n in bcast_n.split():
    bcast.append((f"ws-broadcast {n}x{bcast_k}", f"ws-broadcast-{n}"))
    for mode in zmq_modes.split():
        label = "ZeroMQ burst" if mode == "burst" else f"ZeroMQ {rate}/s"
        bcast.append((f"ws-broadcast {n}x{bcast_k}, {label}", f"ws-broadcast-{n}-{mode}"))
for p, s in bcast:
    rows += [
        (f"{p}: deliveries/s", s, "deliveries_per_sec", True, 1),
        (f"{p}: p50 ms", s, "latency_us.p50", False, 1e-3),
        (f"{p}: p99 ms", s, "latency_us.p99", False, 1e-3),
        (f"{p}: failed/disconnected/lost/dup/ooo", s,
         lambda d: f"{d.get('failed', 0)}/{d.get('disconnected', 0)}/{d.get('lost', 0)}/"
                   f"{d.get('duplicated', 0)}/{d.get('out_of_order', 0)}",
         None, 1),
    ]

def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2f}"

def ratio(a, b, higher):
    if a is None or b is None or b == 0 or a == 0:
        return "-"
    r = a / b if higher else b / a
    return f"{r:.2f}x"

print(f"| metric | Holdfast (limits: {hf_limits}) | Pushpin shipped | Pushpin unlimited | Holdfast / Pushpin-best |")
print("|---|---|---|---|---|")
for label, scen, path, higher, scale in rows:
    vals = {}
    for t in targets:
        d = load(t, scen)
        if d is None:
            vals[t] = None
        elif callable(path):
            vals[t] = path(d)
        else:
            v = get(d, path)
            if path.startswith("latency_us.") and not get(d, "latency_us.count"):
                v = None  # nothing was measured
            vals[t] = None if v is None else v * scale
    r = ""
    if higher is not None:
        pp = [v for v in (vals["pushpin-shipped"], vals["pushpin-unlimited"]) if v is not None]
        best = (max(pp) if higher else min(pp)) if pp else None
        r = ratio(vals["holdfast"], best, higher)
    print(f"| {label} | " + " | ".join(fmt(vals[t]) for t in targets) + f" | {r} |")
print()
print("Ratios: >1x means Holdfast is better (more per second, lower latency). `-`: no result")
print("(the scenario failed; its stderr is in <work>/<target>.err, kept with KEEP=1).")
PY
