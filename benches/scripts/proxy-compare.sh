#!/usr/bin/env bash
# Plain proxying throughput and latency: the same backend measured directly, through Holdfast and
# through Pushpin 1.36, in one run, with wrk. Prints a Markdown table.
#
#   benches/scripts/proxy-compare.sh [duration-seconds] [connections]
#
# HOLDFAST_BIN_DIR=<dir> uses prebuilt binaries instead of building this checkout.
#
# Installs wrk, nginx (the backend) and pushpin with apt if missing. Uses loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10}
conns=${2:-50}

need=()
for p in wrk nginx-light pushpin; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# HOLDFAST_BIN_DIR points at prebuilt binaries (e.g. another checkout's target/release).
bin_dir=${HOLDFAST_BIN_DIR:-target/release}
if [ -z "${HOLDFAST_BIN_DIR:-}" ]; then
  cargo build --release --bins -q
fi

work=$(mktemp -d /tmp/hf-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null || true
}
trap cleanup EXIT

backend_port=18181
hf_port=18182
pp_port=18183

# Backend: nginx answering every request with a small body over keep-alive.
mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$backend_port;
    location / { default_type text/plain; return 200 "hello from the backend\n"; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"

# Pushpin 1.36 with its own zurl (Debian's package expects a system zurl otherwise).
mkdir -p "$work/pp/run" "$work/pp/log"
cat > "$work/pp/pushpin.conf" <<CONF
[global]
include={libdir}/internal.conf
rundir=$work/pp/run
ipc_prefix=bench-
[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:$pp_port
logdir=$work/pp/log
log_level=1
client_buffer_size=8192
client_maxconn=50000
[proxy]
routesfile=routes
sig_key=changeme
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
[handler]
push_in_spec=tcp://127.0.0.1:28560
push_in_sub_specs=tcp://127.0.0.1:28562
push_in_http_addr=127.0.0.1
push_in_http_port=28561
command_spec=tcp://127.0.0.1:28563
stats_spec=ipc://{rundir}/{ipc_prefix}stats
CONF
echo "* 127.0.0.1:$backend_port" > "$work/pp/routes"
pushpin --config "$work/pp/pushpin.conf" >/dev/null 2>&1 &
pids+=($!)

# Holdfast with the same shape of config.
mkdir -p "$work/hf/run"
cat > "$work/hf/pushpin.conf" <<CONF
[global]
rundir=$work/hf/run
ipc_prefix=bench-
[runner]
services=condure,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:$hf_port
log_level=1
client_buffer_size=8192
client_maxconn=50000
[proxy]
routesfile=routes
[handler]
push_in_spec=tcp://127.0.0.1:38560
push_in_sub_specs=tcp://127.0.0.1:38562
push_in_http_addr=127.0.0.1
push_in_http_port=38561
command_spec=tcp://127.0.0.1:38563
CONF
echo "* 127.0.0.1:$backend_port" > "$work/hf/routes"
"$bin_dir/holdfast" --config "$work/hf/pushpin.conf" -m >"$work/hf/out.log" 2>&1 &
pids+=($!)

for port in $backend_port $hf_port $pp_port; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "port $port not answering"; exit 1; }
done

run() { # name port
  wrk -t2 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$2/" > "$work/$1.wrk" 2>&1
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.wrk")
  p50=$(awk '$1=="50%" {print $2}' "$work/$1.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.wrk")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$work/$1.wrk" | tr '\n' ' ')
  echo "$1|$rps|$p50|$p99|${errors:-none}"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; wrk -t2 -c$conns -d${duration}s; $(date -u +%F)"
results=()
results+=("$(run direct $backend_port)")
results+=("$(run holdfast $hf_port)")
results+=("$(run pushpin $pp_port)")
pp_rps=$(echo "${results[2]}" | cut -d'|' -f2)
echo
echo "| target | requests/s | p50 | p99 | errors | vs Pushpin |"
echo "|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  IFS='|' read -r name rps p50 p99 errors <<<"$r"
  ratio=$(awk -v a="$rps" -v b="$pp_rps" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
  echo "| $name | $rps | $p50 | $p99 | $errors | $ratio |"
done
