#!/bin/sh
# Starts Ferry as the L7 reverse proxy of the shared benchmark harness (../shared/bench/ferrybench.py):
#   bench/ferry-l7.sh PORT BACKEND_PORT RUN_DIR
# Writes a one-route configuration into RUN_DIR and replaces itself with `ferry run` on one event loop,
# without an access log (the nginx, HAProxy and Envoy rows run without one too).
set -eu
port=$1 backend=$2 dir=$3
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
cat > "$dir/ferry-l7.yaml" <<YAML
admin: {address: "127.0.0.1:0"}
access_log: {format: none}
listeners:
  - name: l7
    address: "127.0.0.1:$port"
    http:
      limits: {max_requests_per_connection: 100000000}
      virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
            - match: {prefix: /}
              forward: {cluster: backend}
clusters:
  - name: backend
    endpoints: ["127.0.0.1:$backend"]
YAML
exec "$ferry" run -c "$dir/ferry-l7.yaml" --threads 1
