#!/usr/bin/env bash
# `ferry api-proxy` beside `kubectl proxy` on the same API server, same run, same pinning as the shared
# harness (load generator on CPU 1; proxy and API server on CPU 0). The API server is nginx with TLS that
# checks the bearer token and answers GET /api/v1/nodes with a NodeList (a fast stand-in, so the proxies
# are what is measured). Load: wrk -t1 -c64, keep-alive, GET /api/v1/nodes.
#   bench/api-proxy.sh [ROUNDS] [SECONDS]      # default 3 rounds of 5 s; prints a table of medians
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-5}
ferry=${FERRY_BIN:-$PWD/.build/optimized/release/ferry}  # scripts/build-release.sh
for tool in nginx wrk kubectl openssl taskset; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
[ -x "$ferry" ] || scripts/build-release.sh
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT
api_port=18443 kubectl_port=18501 ferry_port=18502

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubernetes -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
nodes='{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-1","uid":"uid-node-1","resourceVersion":"7"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}]}'
cat > "$work/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$api_port ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    location / {
      if (\$http_authorization != "Bearer t0k3n") { return 401 '{"kind":"Status","code":401}'; }
      default_type application/json; return 200 '$nodes';
    }
  }
}
CONF
cat > "$work/kubeconfig" <<CONF
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: $work/cert.pem}}]
users: [{name: bench, user: {token: t0k3n}}]
contexts: [{name: bench, context: {cluster: bench, user: bench}}]
current-context: bench
CONF
taskset -c 0 nginx -c "$work/nginx.conf" & pids+=($!)
taskset -c 0 kubectl proxy --port $kubectl_port --kubeconfig "$work/kubeconfig" >"$work/kubectl.out" 2>&1 & pids+=($!)
kubectl_pid=$!
taskset -c 0 "$ferry" api-proxy --port $ferry_port --kubeconfig "$work/kubeconfig" --threads 1 >"$work/ferry.out" 2>"$work/ferry.err" & pids+=($!)
ferry_pid=$!
for i in $(seq 50); do
  curl -sf "http://127.0.0.1:$kubectl_port/api/v1/nodes" >/dev/null && curl -sf "http://127.0.0.1:$ferry_port/api/v1/nodes" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$ferry_port/api/v1/nodes" | grep -q node-1 || { echo "ferry api-proxy does not answer"; cat "$work/ferry.err"; exit 1; }
curl -sf "http://127.0.0.1:$kubectl_port/api/v1/nodes" | grep -q node-1 || { echo "kubectl proxy does not answer"; cat "$work/kubectl.out"; exit 1; }

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# One run: "req/s p99_ms cpu_us_per_req" (CPU of the proxy process only).
run() {
  local port=$1 pid=$2 c0 c1 out
  c0=$(cpu "$pid")
  out=$(timeout $((seconds + 20)) taskset -c 1 wrk -t1 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/api/v1/nodes")
  c1=$(cpu "$pid")
  python3 - "$out" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, c0, c1, tck = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if non2xx: sys.exit("non-2xx responses: " + non2xx.group(1))
print(f"{rps:.0f} {p99:.2f} {(c1 - c0) / tck * 1e6 / total:.1f}")
PY
}
# Warm-up, then interleaved rounds.
run $kubectl_port $kubectl_pid >/dev/null; run $ferry_port $ferry_pid >/dev/null
: >"$work/results"
for r in $(seq "$rounds"); do
  echo "kubectl $(run $kubectl_port $kubectl_pid)" >>"$work/results"; sleep 0.5
  echo "ferry $(run $ferry_port $ferry_pid)" >>"$work/results"; sleep 0.5
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99, cpu = line.split()
    rows.setdefault(name, []).append((float(rps), float(p99), float(cpu)))
print("| proxy | req/s (median) | min–max | p99 ms | proxy CPU µs/req |")
print("|---|---|---|---|---|")
for name in ("kubectl", "ferry"):
    r = rows[name]
    print(f"| {name} | {statistics.median(x[0] for x in r):,.0f} | {min(x[0] for x in r):,.0f}–{max(x[0] for x in r):,.0f} | "
          f"{statistics.median(x[1] for x in r):.2f} | {statistics.median(x[2] for x in r):.1f} |")
k, f = rows["kubectl"], rows["ferry"]
ratios = [fr[0] / kr[0] for kr, fr in zip(k, f)]
print(f"\nferry × kubectl proxy (req/s, median of per-round ratios): {statistics.median(ratios):.2f}")
PY
