#!/usr/bin/env bash
# Holdfast vs Pushpin 1.36 vs the no-proxy limit server, end to end, with holdfast-loadgen:
# held connections (setup rate, memory per connection), fan-out to one channel (HTTP streaming
# and SSE) and many-channel delivery. Prints one Markdown table with ratios.
#
#   benches/scripts/compare.sh
#
# Parameters (environment):
#   HOLD_N=5000          idle subscribers for `hold` (16000 fits the 20000 open-file hard limit)
#   FANOUT_N=1000        subscribers for `fanout`
#   FANOUT_K=300         messages for `fanout`
#   CHANNELS_N=2000      subscribers/channels for `channels`, run twice: one item per publish
#                        request with CHANNELS_PUBLISHERS requests in flight (each publisher on
#                        its own connection, kept alive where the proxy agrees), and 100 items
#                        per request from one publisher
#   CHANNELS_PUBLISHERS=8  concurrent publishers for the one-item-per-request run
#   FANOUT_ZMQ="burst paced"  also run `fanout` with the messages pushed over ZeroMQ PUSH to the
#                        proxy's PULL socket: `burst` = all K at once (no pacing), `paced` = at
#                        FANOUT_RATE messages/s (the same offered load for every proxy). The
#                        limit server has no ZeroMQ input: for `paced` it gets the same rate over
#                        HTTP, for `burst` it has no figure. Empty: HTTP publishing only.
#   FANOUT_RATE=300      messages/s for `paced`
#   CONCURRENCY=64       connections being opened at once (Pushpin answers 500 "Accept service
#                        unavailable" / 502 above ~100 concurrent opens; the same for everyone)
#   SETTLE=1             seconds between "all subscribed" and the first publish
#   DRAIN=5              stop waiting for deliveries after this many seconds without one
#   HF_LIMITS=none       Holdfast's config: `none` (message_rate/message_hwm removed, like
#                        "pushpin-unlimited") or `shipped` (message_rate=2500, message_hwm=25000)
#   HF_CONNMGR_WORKERS=  Holdfast's `[runner] connmgr_workers` (empty: the default, one per core)
#   BASE_PORT=29000      ports BASE_PORT+1..+99 on 127.0.0.1 are used
#   SKIP_BUILD=1         do not run cargo build
#   HF_BEFORE=DIR        also run the Holdfast binaries in DIR (holdfast, holdfast-connmgr,
#                        holdfast-handler, e.g. a copy of an earlier target/release) as
#                        "holdfast-before", for a before/after comparison in the same run; the
#                        table then gets a "Holdfast before" column and an after/before ratio
#   TARGETS="..."        the proxies to run (default: holdfast pushpin-shipped pushpin-unlimited;
#                        the limit server always runs)
#   KEEP=1               keep the work directory (JSON results, logs)
#
# Pushpin runs twice: once with the config as shipped (message_rate=2500, message_hwm=25000:
# deliveries are throttled to 2500/s and messages beyond the queue are dropped, which shows as
# `lost`) and once with those keys removed. "Pushpin-best" is the better of the two per row.
# Targets run one after the other, never at the same time. Default runtime: ~6-8 minutes on
# 2 cores (~15 with HOLD_N=16000 CHANNELS_N=10000 and HF_BEFORE).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

HOLD_N=${HOLD_N:-5000}
FANOUT_N=${FANOUT_N:-1000}
FANOUT_K=${FANOUT_K:-300}
CHANNELS_N=${CHANNELS_N:-2000}
CHANNELS_PUBLISHERS=${CHANNELS_PUBLISHERS:-8}
FANOUT_ZMQ=${FANOUT_ZMQ-burst paced}
FANOUT_RATE=${FANOUT_RATE:-300}
CONCURRENCY=${CONCURRENCY:-64}
SETTLE=${SETTLE:-1}
DRAIN=${DRAIN:-5}
HF_LIMITS=${HF_LIMITS:-none}
BASE_PORT=${BASE_PORT:-29000}

source "$(dirname "$0")/lib.sh"
bench_prepare
bench_init hf-compare

"$LG" backend --listen "127.0.0.1:$backend_port" >"$work/backend.out" 2>&1 &
pids+=($!)
"$LG" limit-server --listen "127.0.0.1:$limit_port" >"$work/limit.out" 2>&1 &
limit_pid=$!
pids+=($limit_pid)
wait_http "http://127.0.0.1:$backend_port/plain"
wait_http "http://127.0.0.1:$limit_port/plain"


scenarios() { # name url publish zmq-publish(- for none) memory-selection...
  local name=$1 url=$2 publish=$3 zmq=$4
  shift 4
  local common=(--url "$url" --concurrency "$CONCURRENCY")
  local deliver=(--publish "$publish" --settle "$SETTLE" --drain-timeout "$DRAIN")
  echo "== $name: hold" >&2
  "$LG" hold "${common[@]}" -n "$HOLD_N" "$@" >"$work/$name.hold.json" 2>>"$work/$name.err" || true
  for t in stream sse; do
    echo "== $name: fanout $t" >&2
    "$LG" fanout "${common[@]}" "${deliver[@]}" --transport "$t" -n "$FANOUT_N" -k "$FANOUT_K" \
      >"$work/$name.fanout-$t.json" 2>>"$work/$name.err" || true
    for mode in $FANOUT_ZMQ; do
      local how=(--publish "$zmq")
      [ "$mode" = paced ] && how+=(--rate "$FANOUT_RATE")
      if [ "$zmq" = - ]; then
        [ "$mode" = paced ] || continue
        how=(--publish "$publish" --rate "$FANOUT_RATE")
      fi
      echo "== $name: fanout $t, ZeroMQ $mode" >&2
      "$LG" fanout "${common[@]}" "${how[@]}" --settle "$SETTLE" --drain-timeout "$DRAIN" \
        --transport "$t" -n "$FANOUT_N" -k "$FANOUT_K" \
        >"$work/$name.fanout-$t-$mode.json" 2>>"$work/$name.err" || true
    done
  done
  echo "== $name: channels, 1 item per request, $CHANNELS_PUBLISHERS publishers" >&2
  "$LG" channels "${common[@]}" "${deliver[@]}" -n "$CHANNELS_N" --batch 1 \
    --publishers "$CHANNELS_PUBLISHERS" >"$work/$name.channels.json" 2>>"$work/$name.err" || true
  echo "== $name: channels, 100 items per request" >&2
  "$LG" channels "${common[@]}" "${deliver[@]}" -n "$CHANNELS_N" --batch 100 \
    >"$work/$name.channels-batch.json" 2>>"$work/$name.err" || true
}

run_proxy() { # name kind limits
  local name=$1 kind=$2 limits=$3 dir="$work/$1" hf=$HF
  [ "$name" = holdfast-before ] && hf=$HF_BEFORE/holdfast
  gen_conf "$dir" "$kind" "$limits" cmp- ""
  start_proxy "$dir" "$kind" "$hf"
  scenarios "$name" "http://127.0.0.1:$http_port" "http://127.0.0.1:$pub_port" \
    "zmq:tcp://127.0.0.1:$pull_port" --pid-tree "$proxy_pid"
  stop_proxy
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; hold $HOLD_N, fanout $FANOUT_N x $FANOUT_K, channels $CHANNELS_N, concurrency $CONCURRENCY; $(date -u +%F)" >&2
TARGETS=${TARGETS:-holdfast pushpin-shipped pushpin-unlimited}
for target in $TARGETS; do
  case $target in
    holdfast) run_proxy holdfast holdfast "$HF_LIMITS" ;;
    pushpin-shipped) run_proxy pushpin-shipped pushpin shipped ;;
    pushpin-unlimited) run_proxy pushpin-unlimited pushpin none ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  # The runner finds its children next to itself: HF_BEFORE must hold all three binaries.
  if [ "$target" = holdfast ] && [ -n "${HF_BEFORE:-}" ]; then
    run_proxy holdfast-before holdfast "$HF_LIMITS"
  fi
done
scenarios limit "http://127.0.0.1:$limit_port" "http://127.0.0.1:$limit_port" - --pids "$limit_pid"

python3 - "$work" "$HOLD_N" "$FANOUT_N" "$FANOUT_K" "$CHANNELS_N" "$HF_LIMITS" "${HF_BEFORE:+1}" \
  "$FANOUT_ZMQ" "$FANOUT_RATE" "$CHANNELS_PUBLISHERS" <<'PY'
import json, os, sys
work, hold_n, fan_n, fan_k, ch_n, hf_limits, before, zmq_modes, rate, ch_pubs = sys.argv[1:]
targets = ["holdfast", "pushpin-shipped", "pushpin-unlimited", "limit"]
if before:
    targets.insert(1, "holdfast-before")

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

# (label, scenario file, json path, higher is better, scale)
rows = [
    (f"hold {hold_n}: setup conn/s", "hold", "setup_rate", True, 1),
    (f"hold {hold_n}: failures", "hold", "failed", False, 1),
    (f"hold {hold_n}: KiB per conn (RSS)", "hold", "kib_per_conn", False, 1),
]

def delivery_rows(p, scen, unit):
    """Throughput, latency and loss rows of one delivery scenario."""
    return [
        (f"{p}: {unit}/s", scen, "deliveries_per_sec", True, 1),
        (f"{p}: p50 ms", scen, "latency_us.p50", False, 1e-3),
        (f"{p}: p99 ms", scen, "latency_us.p99", False, 1e-3),
        (f"{p}: lost/dup/ooo", scen, None, False, 1),
    ]

for t in ("stream", "sse"):
    variants = [("", f"fanout-{t}")]
    for mode in zmq_modes.split():
        label = "ZeroMQ burst" if mode == "burst" else f"ZeroMQ {rate}/s"
        variants.append((f", {label}", f"fanout-{t}-{mode}"))
    for suffix, scen in variants:
        rows += delivery_rows(f"fanout {fan_n}x{fan_k} {t}{suffix}", scen, "deliveries")
for suffix, scen in ((f"1 item/request, {ch_pubs} publishers", "channels"),
                     ("100 items/request", "channels-batch")):
    rows += delivery_rows(f"channels {ch_n}, {suffix}", scen, "messages")

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

head = f"| metric | Holdfast (limits: {hf_limits}) | "
if before:
    head += "Holdfast before | "
head += "Pushpin shipped | Pushpin unlimited | limit server | Holdfast / Pushpin-best | Holdfast / limit |"
if before:
    head += " after / before |"
print(head)
print("|---" * (head.count("|") - 1) + "|")
for label, scen, path, higher, scale in rows:
    vals = {}
    for t in targets:
        d = load(t, scen)
        if d is None:
            vals[t] = None
        elif path is None:
            vals[t] = f"{d.get('lost', 0)}/{d.get('duplicated', 0)}/{d.get('out_of_order', 0)}"
        else:
            v = get(d, path)
            vals[t] = None if v is None else v * scale
    if path is None or "failures" in label:
        r1 = r2 = r3 = ""
    else:
        pp = [v for v in (vals["pushpin-shipped"], vals["pushpin-unlimited"]) if v is not None]
        best = (max(pp) if higher else min(pp)) if pp else None
        r1 = ratio(vals["holdfast"], best, higher)
        r2 = ratio(vals["holdfast"], vals["limit"], higher)
        r3 = ratio(vals["holdfast"], vals.get("holdfast-before"), higher)
    row = f"| {label} | " + " | ".join(fmt(vals[t]) for t in targets) + f" | {r1} | {r2} |"
    if before:
        row += f" {r3} |"
    print(row)
print()
print("Ratios: >1x means Holdfast is better (faster, less memory, lower latency); the limit server")
print("is the same client against a minimal in-process Rust server, the machine's practical ceiling.")
if zmq_modes.split():
    print("ZeroMQ rows: the limit server has no ZeroMQ input; its paced row is the same rate over HTTP.")
PY
