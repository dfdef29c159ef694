#!/usr/bin/env bash
# HTTP/2 beside nginx and Envoy on this machine: h2load with 100 streams per connection, over h2c (prior
# knowledge) and h2 (TLS, ALPN), each proxy on one worker / event loop pinned to CPU 0 with the HTTP/1.1
# backend (nginx), h2load on CPU 1. Same ECDSA P-256 certificate. Interleaved rounds; prints requests/s
# and the proxy's CPU per request (from /proc), per round and as medians with ratios.
#   bench/h2.sh [ROUNDS] [REQUESTS]       # default 3 rounds of 200,000 requests; FERRY_BIN, ENVOY_BIN override
set -euo pipefail
rounds=${1:-3} requests=${2:-200000}
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
envoy=${ENVOY_BIN:-$(python3 -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))' 2>/dev/null || command -v envoy || true)}
work=$(mktemp -d /tmp/ferry-h2-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
. "$here/common.sh"
make_certificate "$work"
backend=19290
declare -A clear=([nginx]=19281 [envoy]=19282 [ferry]=19283) tls=([nginx]=19291 [envoy]=19292 [ferry]=19293)
mkdir -p nginx
backend_nginx_conf "$work/backend" "$backend"
cat > nginx/nginx.conf <<CONF
worker_processes 1; daemon off; pid nginx.pid; error_log error.log warn;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 75s;
  upstream backend { server 127.0.0.1:$backend; keepalive 128; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${clear[nginx]} http2; listen 127.0.0.1:${tls[nginx]} ssl http2;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    http2_max_concurrent_streams 128;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
envoy_listener() {  # name port tls
  cat <<YAML
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          codec_type: AUTO
          route_config: {name: local, virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: backend}}]}]}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
YAML
  if [ "$3" = tls ]; then cat <<YAML
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates: [{certificate_chain: {filename: $work/cert.pem}, private_key: {filename: $work/key.pem}}]
YAML
  fi
}
{ echo "static_resources:"; echo "  listeners:"; envoy_listener clear "${clear[envoy]}" plain; envoy_listener tls "${tls[envoy]}" tls
  cat <<YAML
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 2s
    load_assignment: {cluster_name: backend, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $backend}}}}]}]}
YAML
} > envoy.yaml
cat > ferry.yaml <<CONF
admin: {address: "127.0.0.1:0"}
access_log: {format: none}
listeners:
  - name: clear
    address: "127.0.0.1:${clear[ferry]}"
    http: {http2: {prior_knowledge: true}, limits: {max_requests_per_connection: 100000000}, virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: backend}}]}]}
  - name: tls
    address: "127.0.0.1:${tls[ferry]}"
    tls: {certificate_file: $work/cert.pem, key_file: $work/key.pem}
    http: {limits: {max_requests_per_connection: 100000000}, virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: backend}}]}]}
clusters:
  - {name: backend, endpoints: ["127.0.0.1:$backend"]}
CONF
taskset -c 0 nginx -p "$work/backend/" -c "$work/backend/nginx.conf" -e "$work/backend/error.log" & pids+=($!)
taskset -c 0 nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" & pids+=($!)
taskset -c 0 "$ferry" run -c ferry.yaml --threads 1 2> ferry.log & pids+=($!); ferry_pid=$!
targets=(nginx ferry)
if [ -n "$envoy" ] && [ -x "$envoy" ]; then
  taskset -c 0 "$envoy" -c envoy.yaml --concurrency 1 --log-level warn --disable-hot-restart 2> envoy.log & pids+=($!); envoy_pid=$!
  targets=(nginx envoy ferry)
fi
sleep 2
nginx_pid=$(pgrep -P "$(cat nginx/nginx.pid)" | head -1)
declare -A pid=([nginx]=$nginx_pid [ferry]=$ferry_pid [envoy]=${envoy_pid:-0})
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {  # target url -> "req/s cpu_us"
  local before; before=$(cpu "${pid[$1]}")
  local out; out=$(taskset -c 1 h2load -n "$requests" -c 4 -m 100 "$2" 2>&1)
  local after; after=$(cpu "${pid[$1]}")
  echo "$out" | grep -q "$requests succeeded" || { echo "$1 $2: not every request succeeded" >&2; echo "$out" | tail -5 >&2; }
  local rps; rps=$(echo "$out" | awk '/finished in/ {print $4}')
  echo "$rps $(python3 -c "print(round(($after - $before) * 1e4 / $requests, 2))")"
}
for scenario in h2c h2; do
  : > "$scenario.txt"
  for r in $(seq "$rounds"); do
    line=""
    for t in "${targets[@]}"; do
      if [ $scenario = h2c ]; then url="http://127.0.0.1:${clear[$t]}/"; else url="https://127.0.0.1:${tls[$t]}/"; fi
      line="$line $(run "$t" "$url")"
    done
    echo "$scenario round $r: ${targets[*]} ->$line"
    echo "$line" >> "$scenario.txt"
  done
  python3 - "$scenario" "${targets[@]}" <<'PY'
import statistics, sys
scenario, targets = sys.argv[1], sys.argv[2:]
rows = [list(map(float, l.split())) for l in open(scenario + ".txt")]
out = []
for i, t in enumerate(targets):
    rps = statistics.median(r[2 * i] for r in rows)
    cpu = statistics.median(r[2 * i + 1] for r in rows)
    ratio = statistics.median(r[2 * i] / r[0] for r in rows)
    cratio = statistics.median(r[2 * i + 1] / r[1] for r in rows)
    out.append(f"{t} {rps:,.0f} req/s ({ratio:.2f}x nginx) {cpu} us/req ({cratio:.2f}x)")
print(f"{scenario}: " + " | ".join(out))
PY
done
