#!/usr/bin/env bash
# Churn soak: Holdfast vs Pushpin 1.36 in one run, with `holdfast-loadgen churn`. Both proxies
# reach the loadgen's embedded GRIP backend through one `over_http` route. Prints one Markdown
# table.
#
#   benches/scripts/churn-compare.sh
#
# Per target, one after the other: CHURN_N subscribers spread over HTTP streaming, SSE,
# long-polling and WebSocket (one channel per transport); once all are connected, for
# CHURN_SECS seconds CHURN_PCT percent of them close and reconnect every second while
# CHURN_RATE messages per second are published over the HTTP publish API (one item per
# transport). Reported: exactly-once for every subscriber present over a message's whole life
# (lost / duplicated), connections closed by the proxy, 5xx answers to new subscribers, and the
# summed RSS of the proxy's processes (runner and children) before any client, after warm-up,
# at the end of the churn and CHURN_COOLDOWN seconds after the clients left.
#
# Parameters (environment):
#   CHURN_N=4000           subscriber slots
#   CHURN_PCT=2            percent of the slots reconnecting per second
#   CHURN_RATE=1           messages per second
#   POLL_SETTLE=0.6        a long-poll counts as subscribed this long after it was sent (must be
#                          below 1/CHURN_RATE; see `holdfast-loadgen churn --help`)
#   SOURCES=16             loopback source addresses for client sockets (reconnections need
#                          fresh ephemeral ports)
#   CHURN_SECS=150         seconds of churn and publishing
#   CHURN_WARMUP=30        seconds into the churn at which memory counts as warmed up
#   CHURN_COOLDOWN=10      seconds between the clients leaving and the last memory reading
#   CONCURRENCY=64         connections being opened at once
#   TARGETS="holdfast pushpin-unlimited"   also: pushpin-shipped (message_rate=2500,
#                          message_hwm=25000 as Debian ships them)
#   BASE_PORT=29300        ports BASE_PORT+1..+99 on 127.0.0.1 are used
#   SKIP_BUILD=1           do not run cargo build
#   KEEP=1                 keep the work directory (JSON results, logs)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

CHURN_N=${CHURN_N:-4000}
CHURN_PCT=${CHURN_PCT:-2}
CHURN_RATE=${CHURN_RATE:-1}
POLL_SETTLE=${POLL_SETTLE:-0.6}
SOURCES=${SOURCES:-16}
CHURN_SECS=${CHURN_SECS:-150}
CHURN_WARMUP=${CHURN_WARMUP:-30}
CHURN_COOLDOWN=${CHURN_COOLDOWN:-10}
CONCURRENCY=${CONCURRENCY:-64}
TARGETS=${TARGETS:-holdfast pushpin-unlimited}
BASE_PORT=${BASE_PORT:-29300}

source "$(dirname "$0")/lib.sh"
bench_prepare
bench_init hf-churn-compare

"$LG" backend --listen "127.0.0.1:$backend_port" >"$work/backend.out" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$backend_port/plain"


run_proxy() { # name kind limits
  local name=$1 kind=$2 limits=$3 dir="$work/$1"
  gen_conf "$dir" "$kind" "$limits" churn- ",over_http"
  start_proxy "$dir" "$kind"
  echo "== $name: churn $CHURN_N subscribers, $CHURN_PCT%/s, $CHURN_RATE msg/s, ${CHURN_SECS}s" >&2
  "$LG" churn --url "http://127.0.0.1:$http_port" --publish "http://127.0.0.1:$pub_port" \
    --concurrency "$CONCURRENCY" --sources "$SOURCES" --poll-settle "$POLL_SETTLE" -n "$CHURN_N" --churn "$CHURN_PCT" --rate "$CHURN_RATE" \
    -d "$CHURN_SECS" --warmup "$CHURN_WARMUP" --cooldown "$CHURN_COOLDOWN" --pid-tree "$proxy_pid" \
    >"$work/$name.json" 2>"$work/$name.err" || tail -3 "$work/$name.err" >&2
  stop_proxy 75
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; churn $CHURN_N x ${CHURN_SECS}s, $CHURN_PCT%/s, $CHURN_RATE msg/s; $(date -u +%F)" >&2
for t in $TARGETS; do
  case $t in
    holdfast) run_proxy holdfast holdfast none ;;
    pushpin-shipped) run_proxy pushpin-shipped pushpin shipped ;;
    pushpin-unlimited) run_proxy pushpin-unlimited pushpin none ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

python3 - "$work" "$TARGETS" <<'PY'
import json, os, sys
work, targets = sys.argv[1], sys.argv[2].split()
names = {"holdfast": "Holdfast", "pushpin-shipped": "Pushpin shipped", "pushpin-unlimited": "Pushpin unlimited"}

def load(t):
    try:
        with open(os.path.join(work, f"{t}.json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None

def mib(kib):
    return f"{kib / 1024:.1f}"

rows = [
    ("subscribers / reconnections", lambda d: f"{d['subscribers']} / {d['reopened']}"),
    ("setup s", lambda d: f"{d['setup_secs']:.1f}"),
    ("messages published (errors)", lambda d: f"{d['published']} ({d['publish_errors']})"),
    ("deliveries checked (present whole life)", lambda d: str(d["expected"])),
    ("lost / duplicated", lambda d: f"{d['lost']} / {d['duplicated']}"),
    ("delivery latency ms: p50 / p99 / max",
     lambda d: "{:.0f} / {:.0f} / {:.0f}".format(*(d["latency_us"][k] / 1000 for k in ("p50", "p99", "max")))),
]
for kind in ("stream", "sse", "poll", "ws"):
    rows.append((f"  {kind}: checked / lost / dup",
                 lambda d, k=kind: "{expected} / {lost} / {duplicated}".format(**d["per_transport"][k])
                 if k in d["per_transport"] else "-"))
rows += [
    ("connections closed by the proxy", lambda d: str(d["server_closed"])),
    ("5xx answers to subscribers / failed opens (any cause)",
     lambda d: f"{d['status_5xx']} / {d['open_failed']}"),
    ("RSS MiB: start", lambda d: mib(d["rss_kib"]["start"])),
    ("RSS MiB: all connected", lambda d: mib(d["rss_kib"]["connected"])),
    ("RSS MiB: after warm-up", lambda d: mib(d["rss_kib"]["warm"])),
    ("RSS MiB: end of churn (max)", lambda d: f"{mib(d['rss_kib']['end'])} ({mib(d['rss_kib']['max'])})"),
    ("RSS MiB: growth after warm-up", lambda d: mib(d["rss_kib"]["growth_after_warmup"])),
    ("RSS MiB: clients gone (vs start)",
     lambda d: f"{mib(d['rss_kib']['after'])} ({d['rss_kib']['after_minus_start'] / 1024:+.1f})"),
    ("all checks pass", lambda d: "yes" if d["ok"] else "no"),
]
print("| metric | " + " | ".join(names[t] for t in targets) + " |")
print("|---|" + "---|" * len(targets))
results = {t: load(t) for t in targets}
for label, f in rows:
    cells = []
    for t in targets:
        d = results[t]
        try:
            cells.append(f(d) if d else "-")
        except Exception:
            cells.append("-")
    print(f"| {label} | " + " | ".join(cells) + " |")
for t in targets:
    d = results[t]
    if d and d.get("reasons"):
        print(f"\n{names[t]} reasons: " + ", ".join(f"{k} x{v}" for k, v in d["reasons"].items()))
PY
