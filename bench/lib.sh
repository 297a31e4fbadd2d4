# Shared by the bench scripts: a demo state, a proxy process, nginx with a fixed answer, and
# wrappers for wrk and xks-load. Loopback only; callers bound every run.

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

# bench_start_nginx DIR PORT: nginx answering every request with a fixed Encrypt-like JSON
# body, over the demo's certificate (the HTTPS ceiling of the box).
bench_start_nginx() {
  local dir=$1 port=$2
  cat >"$dir/nginx.conf" <<NGINX
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/nginx.error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $dir/demo/tls/server.pem;
    ssl_certificate_key $dir/demo/tls/server-key.pem;
    location / {
      default_type application/json;
      return 200 '{"authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==","ciphertext":"ghxkK1txeDNn3q8YghxkK1txeDNn3q8YghxkK1txeDNn","initializationVector":"HMrlRw85cAJUd5Ax"}';
    }
  }
}
NGINX
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx.error.log"
}

bench_stop_nginx() {
  local dir=$1
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  rm -f "$dir/nginx.pid"
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

# bench_load DIR PORT NAME ARGS...: runs xks-load with the demo's kms-console.json and CA,
# keeps DIR/NAME.json and DIR/NAME.html, and fails if any request failed.
bench_load() {
  local dir=$1 port=$2 name=$3
  shift 3
  build/bin/xks-load --port "$port" --cacert "$dir/demo/tls/ca.pem" \
    --kms-console "$dir/demo/kms-console.json" --json "$dir/$name.json" \
    --html "$dir/$name.html" "$@" >"$dir/$name.txt" 2>&1 || {
    cat "$dir/$name.txt" >&2
    return 1
  }
}

# bench_field DIR NAME EXPRESSION: a figure from DIR/NAME.json, e.g. 'r["latency_ms"]["p99"]'.
bench_field() {
  /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($3)" "$1/$2.json"
}

bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}

bench_tools() {
  command -v wrk >/dev/null && command -v nginx >/dev/null && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light >/dev/null
}
