#!/bin/sh
# Starts `ferry run` with two tcp_proxy listeners for the shared harness's L4 scenarios (l4-ka, l4-close,
# l4-bulk): PORT → the backend, BULK_PORT → the sink. One event loop, no access log.
#   bench/ferry-l4.sh PORT BULK_PORT BACKEND_PORT SINK_PORT RUN_DIR
set -eu
port=$1 bulk=$2 backend=$3 sink=$4 dir=$5
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
cat > "$dir/ferry-l4.yaml" <<YAML
admin: {address: "127.0.0.1:0"}
access_log: {format: none}
listeners:
  - {name: l4, address: "127.0.0.1:$port", tcp_proxy: {cluster: backend}}
  - {name: l4-bulk, address: "127.0.0.1:$bulk", tcp_proxy: {cluster: sink}}
clusters:
  - {name: backend, endpoints: ["127.0.0.1:$backend"]}
  - {name: sink, endpoints: ["127.0.0.1:$sink"]}
YAML
exec "$ferry" run -c "$dir/ferry-l4.yaml" --threads 1
