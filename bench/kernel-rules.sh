#!/bin/bash
# The kernel-rule path of `ferry service-proxy` in both kernel modes against direct and a one-rule DNAT,
# same run, interleaved rounds. Two network namespaces made here and linked only to each other by a veth
# pair: "node" (wrk and the rules) and "pod" (nginx answering a small body on 10.244.1.5:8080). Rows:
#   direct          wrk → 10.244.1.5:8080
#   dnat-1rule      one `iptables -t nat -A OUTPUT … -j DNAT` rule, wrk → 10.96.0.10:80
#   ferry-iptables  `ferry service-proxy --mode iptables` (kube-proxy's chains), wrk → 10.96.0.10:80
#   ferry-nftables  `ferry service-proxy --mode nftables` (kube-proxy's table), wrk → 10.96.0.10:80
# Scenarios: keep-alive (ka) and a new connection per request (close), where the rules are walked for
# every connection. Needs root, wrk and nginx.
#   bench/kernel-rules.sh [ROUNDS] [SECONDS]
set -euo pipefail
rounds=${1:-3} seconds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
run=$(mktemp -d /tmp/ferry-kernel-rules.XXXXXX)
node=fbk-node-$$ pod=fbk-pod-$$
ferry_pid="" nginx_pid=""

cleanup() {
  [ -n "$ferry_pid" ] && kill "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  ip netns del "$node" 2>/dev/null || true
  ip netns del "$pod" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$node"
ip netns add "$pod"
ip link add vk1 netns "$node" type veth peer name vk0 netns "$pod"
ip -n "$node" addr add 10.244.1.1/24 dev vk1
ip -n "$pod" addr add 10.244.1.5/24 dev vk0
for ns in "$node" "$pod"; do ip -n "$ns" link set lo up; done
ip -n "$node" link set vk1 up
ip -n "$pod" link set vk0 up
ip -n "$node" route add 10.96.0.0/16 dev vk1
# Connection-per-request needs the client's TIME_WAIT ports back.
ip netns exec "$node" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"

cat > "$run/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 10.244.1.5:8080 backlog=4096; location / { return 200 "ok\n"; } }
}
CONF
ip netns exec "$pod" taskset -c 0 nginx -p "$run/" -c "$run/nginx.conf" &
nginx_pid=$!
mkdir -p "$run/manifests"
cat > "$run/manifests/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, namespace: default, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.5], conditions: {ready: true}}]
YAML
for _ in $(seq 50); do ip netns exec "$node" curl -s -o /dev/null http://10.244.1.5:8080/ && break; sleep 0.1; done

# wrk's requests/s for URL; extra arguments go to wrk.
measure() {
  ip netns exec "$node" taskset -c 1 wrk -t1 -c50 -d"${seconds}s" "$@" | awk '/^Requests\/sec/ {print $2}'
}

start_row() {
  case $1 in
    direct) url=http://10.244.1.5:8080/ ;;
    dnat-1rule)
      ip netns exec "$node" iptables -w -t nat -A OUTPUT -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
      url=http://10.96.0.10/ ;;
    ferry-iptables|ferry-nftables)
      ip netns exec "$node" "$ferry" service-proxy --mode "${1#ferry-}" --manifests "$run/manifests" --hostname-override node \
        --cluster-cidr 10.244.0.0/16 --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 \
        --iptables-localhost-nodeports false 2> "$run/$1.log" &
      ferry_pid=$!
      for _ in $(seq 100); do grep -q "rules synced" "$run/$1.log" && break; sleep 0.1; done
      url=http://10.96.0.10/ ;;
  esac
  ip netns exec "$node" curl -sf -o /dev/null "$url" || { echo "$1: $url does not answer" >&2; exit 1; }
}

stop_row() {
  case $1 in
    dnat-1rule) ip netns exec "$node" iptables -w -t nat -D OUTPUT -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080 ;;
    ferry-*)
      kill "$ferry_pid"; wait "$ferry_pid" || true; ferry_pid=""
      ip netns exec "$node" "$ferry" service-proxy --cleanup ;;
  esac
  ip netns exec "$node" conntrack -F 2>/dev/null || true
}

rows="direct dnat-1rule ferry-iptables ferry-nftables"
echo "round row ka_req_s close_req_s" > "$run/results.txt"
for round in $(seq "$rounds"); do
  for row in $rows; do
    start_row "$row"
    ka=$(measure "$url")
    close=$(measure -H "Connection: close" "$url")
    stop_row "$row"
    echo "$round $row $ka $close" | tee -a "$run/results.txt"
  done
done
echo "medians over $rounds rounds of ${seconds}s (wrk -t1 -c50 on CPU 1, nginx on CPU 0):"
python3 - "$run/results.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]).read().split("\n")[1:]:
    if line.strip():
        r, row, ka, close = line.split()
        rows.setdefault(row, []).append((float(ka), float(close)))
base = rows["dnat-1rule"]
print("| row | ka req/s | close req/s | ka × dnat-1rule | close × dnat-1rule |")
print("|---|---|---|---|---|")
for row, values in rows.items():
    ka = statistics.median(v[0] for v in values)
    close = statistics.median(v[1] for v in values)
    rka = statistics.median(v[0] / b[0] for v, b in zip(values, base))
    rclose = statistics.median(v[1] / b[1] for v, b in zip(values, base))
    print("| %s | %s | %s | %.2f | %.2f |" % (row, format(int(ka), ","), format(int(close), ","), rka, rclose))
PY
echo "raw: $run/results.txt"
