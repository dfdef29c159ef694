#!/usr/bin/env bash
# HTTPS beside nginx on this machine: the same ECDSA P-256 certificate, the same backend (nginx),
# each proxy on one event loop / worker pinned to CPU 0 with the backend (as the shared harness does), wrk on CPU 1;
# session tickets at each server's default (on for both). Three scenarios, interleaved rounds:
#   https-ka      keep-alive HTTPS requests per second (wrk -c64)
#   https-resume  a new TLS connection per request (wrk -H "Connection: close"): wrk resumes the TLS session,
#                 so this is an abbreviated handshake per request
#   https-full    a full handshake per connection and one request (two `openssl s_time -new -www /` at once)
# Prints requests/s, and the proxy's CPU per request from /proc, per round and as medians with ratios.
#   bench/tls.sh [ROUNDS] [SECONDS]          # default 5 rounds of 5 s; FERRY_BIN overrides the binary
set -euo pipefail
rounds=${1:-5} seconds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
work=$(mktemp -d /tmp/ferry-tls-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
. "$here/common.sh"
make_certificate "$work"
backend=19190 nginx_port=19443 ferry_port=19444
mkdir -p nginx
backend_nginx_conf "$work/backend" "$backend"
cat > nginx/nginx.conf <<CONF
worker_processes 1; daemon off; pid nginx.pid; error_log error.log warn;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 75s;
  upstream backend { server 127.0.0.1:$backend; keepalive 128; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$nginx_port ssl backlog=4096;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > ferry.yaml <<CONF
admin: {address: "127.0.0.1:0"}
access_log: {format: none}
listeners:
  - name: tls
    address: "127.0.0.1:$ferry_port"
    tls: {certificate_file: $work/cert.pem, key_file: $work/key.pem}
    http:
      limits: {max_requests_per_connection: 100000000}
      virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: backend}}]}]
clusters:
  - {name: backend, endpoints: ["127.0.0.1:$backend"]}
CONF
taskset -c 0 nginx -p "$work/backend/" -c "$work/backend/nginx.conf" -e "$work/backend/error.log" & pids+=($!)
taskset -c 0 nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" & pids+=($!)
taskset -c 0 "$ferry" run -c ferry.yaml --threads 1 2> ferry.log & pids+=($!)
ferry_pid=$!
sleep 1.5
nginx_pid=$(pgrep -P "$(cat nginx/nginx.pid)" | head -1)
for port in $nginx_port $ferry_port; do
  curl -sk --max-time 5 -o /dev/null -w "%{http_code}" "https://127.0.0.1:$port/" | grep -q 200 || { echo "port $port does not answer" >&2; cat ferry.log >&2; exit 1; }
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {  # target pid port scenario -> "req/s cpu_us"
  local pid=$2 port=$3 extra=() rps
  [ "$4" = https-resume ] && extra=(-H "Connection: close")
  local before; before=$(cpu "$pid")
  if [ "$4" = https-full ]; then
    for i in 1 2; do taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$seconds" -www / > "s_time.$i" 2>&1 & done
    wait %1 %2 2>/dev/null || wait
    rps=$(cat s_time.1 s_time.2 | awk '/connections in [0-9.]+ real seconds|connections in [0-9]+ real seconds/ {n += $1} END {printf "%.1f", n / '"$seconds"'}')
  else
    rps=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "${extra[@]}" "https://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
  fi
  local after; after=$(cpu "$pid")
  echo "$rps $(python3 -c "print(round(($after - $before) * 1e4 / ($rps * $seconds), 1))")"
}
for scenario in https-ka https-resume https-full; do
  : > "$scenario.txt"
  for r in $(seq "$rounds"); do
    n=$(run nginx "$nginx_pid" $nginx_port $scenario); f=$(run ferry "$ferry_pid" $ferry_port $scenario)
    echo "$scenario round $r: nginx $n | ferry $f"
    echo "$n $f" >> "$scenario.txt"
  done
  python3 - "$scenario" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1] + ".txt")]
med = lambda i: statistics.median(r[i] for r in rows)
ratio = statistics.median(r[2] / r[0] for r in rows)
cpu = statistics.median(r[3] / r[1] for r in rows)
print(f"{sys.argv[1]}: nginx {med(0):,.0f} req/s {med(1)} us/req | ferry {med(2):,.0f} req/s {med(3)} us/req | ferry/nginx req/s {ratio:.2f}, CPU {cpu:.2f}")
PY
done
