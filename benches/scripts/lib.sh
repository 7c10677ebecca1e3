# What compare.sh, ws-compare.sh and churn-compare.sh share: the work directory and its cleanup,
# the port plan, waiting helpers, and the one pushpin.conf shape every proxy runs with (Holdfast
# and Pushpin 1.36 get the same generated config, so they are compared like for like).
#
# Sourced, not run. The caller sets `root` (the repository) and BASE_PORT, calls `bench_prepare`
# (which sets LG and HF), then `bench_init <work-dir-prefix>`.

# Installs what the scripts need when it is missing (Pushpin, python3, curl), builds the release
# binaries unless SKIP_BUILD is set, sets LG (holdfast-loadgen) and HF (the holdfast runner), and
# raises the open-file soft limit to the hard limit: every process started afterwards inherits
# it, and 10,000 subscribers are 10,000 sockets in the loadgen and more in the proxy.
bench_prepare() {
  local need=()
  command -v pushpin >/dev/null || need+=(pushpin)
  command -v python3 >/dev/null || need+=(python3)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -q -p holdfast-tools -p holdfast-handler -p holdfast-connmgr
  fi
  LG=$root/target/release/holdfast-loadgen
  HF=$root/target/release/holdfast
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# Creates the work directory, the port plan and the EXIT trap that kills what `pids` holds.
bench_init() { # work-dir-prefix
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  backend_port=$((BASE_PORT + 80))
  limit_port=$((BASE_PORT + 90))
  http_port=$((BASE_PORT + 1))
  pull_port=$((BASE_PORT + 10))
  pub_port=$((BASE_PORT + 11))
  sub_port=$((BASE_PORT + 12))
  cmd_port=$((BASE_PORT + 13))
}

bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "results kept in $work" >&2 || rm -rf "$work"
}

wait_http() { # url
  for _ in $(seq 150); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$1 not answering" >&2
  return 1
}

wait_gone() { # pid [tries of 0.2 s, default 50]
  for _ in $(seq "${2:-50}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
}

# One pushpin.conf shape for every proxy; `limits` = shipped|none decides
# message_rate/message_hwm; `route_opts` is appended to the route's target (e.g. ",over_http").
gen_conf() { # dir kind(pushpin|holdfast) limits ipc-prefix route-opts
  local dir=$1 kind=$2 limits=$3 prefix=$4 route_opts=${5:-}
  mkdir -p "$dir/run" "$dir/log"
  {
    echo "[global]"
    [ "$kind" = pushpin ] && echo "include={libdir}/internal.conf"
    echo "rundir=$dir/run"
    echo "ipc_prefix=$prefix"
    echo "[runner]"
    if [ "$kind" = pushpin ]; then
      echo "services=condure,zurl,pushpin-proxy,pushpin-handler"
    else
      echo "services=condure,pushpin-proxy,pushpin-handler"
    fi
    echo "http_port=127.0.0.1:$http_port"
    echo "logdir=$dir/log"
    if [ "$kind" = holdfast ] && [ -n "${HF_CONNMGR_WORKERS:-}" ]; then
      echo "connmgr_workers=$HF_CONNMGR_WORKERS"
    fi
    echo "log_level=1"
    echo "client_buffer_size=8192"
    echo "client_maxconn=50000"
    echo "[proxy]"
    echo "routesfile=routes"
    echo "sig_key=changeme"
    if [ "$kind" = pushpin ]; then
      echo "zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in"
      echo "zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream"
      echo "zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out"
    fi
    echo "[handler]"
    echo "push_in_spec=tcp://127.0.0.1:$pull_port"
    echo "push_in_sub_specs=tcp://127.0.0.1:$sub_port"
    echo "push_in_http_addr=127.0.0.1"
    echo "push_in_http_port=$pub_port"
    echo "command_spec=tcp://127.0.0.1:$cmd_port"
    # Both get a stats socket, as Pushpin's internal.conf and a Debian pushpin.conf give one.
    echo "stats_spec=ipc://{rundir}/{ipc_prefix}stats"
    if [ "$limits" = shipped ]; then
      echo "message_rate=2500"
      echo "message_hwm=25000"
    fi
  } >"$dir/pushpin.conf"
  echo "* 127.0.0.1:$backend_port$route_opts" >"$dir/routes"
}

# Starts a proxy on a config made by gen_conf and waits until its client port and its publish
# API answer; sets `proxy_pid`. `hf` is the holdfast runner to use (default $HF).
start_proxy() { # dir kind [hf]
  local dir=$1 kind=$2 hf=${3:-$HF}
  if [ "$kind" = pushpin ]; then
    pushpin --config "$dir/pushpin.conf" >"$dir/out.log" 2>&1 &
  else
    "$hf" --config "$dir/pushpin.conf" -m >"$dir/out.log" 2>&1 &
  fi
  proxy_pid=$!
  pids+=($proxy_pid)
  wait_http "http://127.0.0.1:$http_port/plain"
  # The publish API answers 4xx to a GET once it listens.
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$pub_port/" && break; sleep 0.2; done
}

stop_proxy() { # [tries for wait_gone]
  kill "$proxy_pid" 2>/dev/null || true
  wait_gone "$proxy_pid" "${1:-50}"
  sleep 1
}
