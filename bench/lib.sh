# Shared by the bench scripts: a demo state, a proxy process and a pre-signed Encrypt request.
# Loopback only; callers bound every run.

# bench_setup DIR PORT ADMIN_PORT: demo state in DIR and the wrk script DIR/encrypt.lua.
bench_setup() {
  local dir=$1 port=$2 admin_port=$3
  build/bin/xks-proxy demo --setup-only --state-dir "$dir/demo" --port "$port" \
    --admin-port "$admin_port" >/dev/null
  /usr/bin/python3 bench/sign_request.py "localhost:$port" \
    "$(cat "$dir/demo/secrets/sigv4-access-key-id")" "$dir/demo/secrets/sigv4-secret" 32 \
    >"$dir/encrypt.lua"
}

# bench_start_proxy DIR CONFIG ADMIN_PORT: starts xks-proxy serve; sets proxy_pid.
bench_start_proxy() {
  local dir=$1 config=$2 admin_port=$3
  SOFTHSM2_CONF="$dir/demo/softhsm/softhsm2.conf" build/bin/xks-proxy serve \
    --config "$config" >>"$dir/proxy.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "proxy did not become ready; see $dir/proxy.log" >&2
  return 1
}

bench_stop_proxy() {
  if [ -n "${proxy_pid:-}" ]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=
  fi
}

# bench_wrk DIR URL SECONDS CONNECTIONS: prints requests/s; fails on any non-2xx answer.
bench_wrk() {
  local dir=$1 url=$2 seconds=$3 connections=$4
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$dir/encrypt.lua" "$url" >"$dir/wrk.out"
  if grep -q 'Non-2xx' "$dir/wrk.out"; then
    cat "$dir/wrk.out" >&2
    echo "errors in the run" >&2
    return 1
  fi
  awk '/Requests\/sec/ {print $2}' "$dir/wrk.out"
}

bench_tools() {
  command -v wrk >/dev/null && command -v nginx >/dev/null && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light >/dev/null
}
