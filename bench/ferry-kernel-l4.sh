#!/bin/sh
# Starts `ferry service-proxy` (iptables mode) for the shared harness's L4 scenarios: a Service whose cluster
# IP is 127.0.0.1, port PORT → the backend and BULK_PORT → the sink, so the harness's traffic goes through
# kube-proxy's chains (KUBE-SERVICES → KUBE-SVC → KUBE-SEP → DNAT) as Ferry writes them. Needs root.
#   bench/ferry-kernel-l4.sh PORT BULK_PORT BACKEND_PORT SINK_PORT RUN_DIR
# On SIGTERM the rules are removed again, and the iptables tables that did not exist before are deleted, so
# that conntrack is not left hooked for the rows that run after this one.
set -eu
port=$1 bulk=$2 backend=$3 sink=$4 dir=$5
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
tables_before=$(nft list tables 2>/dev/null || true)
mkdir -p "$dir/manifests"
cat > "$dir/manifests/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec: {clusterIP: 127.0.0.1, ports: [{name: http, port: $port}, {name: bulk, port: $bulk}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, namespace: default, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{name: http, port: $backend}, {name: bulk, port: $sink}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
YAML
"$ferry" service-proxy --manifests "$dir/manifests" --hostname-override bench \
  --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --iptables-localhost-nodeports false &
pid=$!
stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$ferry" service-proxy --cleanup || true
  # KUBE-FIREWALL is kubelet's chain too, so --cleanup keeps it (as kube-proxy does); here it goes.
  iptables -w -t filter -F KUBE-FIREWALL 2>/dev/null && iptables -w -t filter -X KUBE-FIREWALL 2>/dev/null || true
  for table in nat filter; do
    if ! printf '%s\n' "$tables_before" | grep -qx "table ip $table"; then
      if ! iptables -w -t $table -S | grep -qv '^-P '; then nft delete table ip $table 2>/dev/null || true; fi
    fi
  done
  exit 0
}
trap stop TERM INT
wait "$pid"
