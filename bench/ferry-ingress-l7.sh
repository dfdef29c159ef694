#!/bin/sh
# Starts `ferry ingress` for the shared benchmark harness's L7 scenarios, on a generated routing table:
#   bench/ferry-ingress-l7.sh PORT BACKEND_PORT RUN_DIR INGRESSES PATHS_PER_INGRESS
# (see bench/ingress-manifests.py). One event loop, no access log, like the other L7 rows.
set -eu
port=$1 backend=$2 dir=$3 ingresses=$4 paths=$5
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
python3 "$here/ingress-manifests.py" "$dir/manifests" "$backend" "$ingresses" "$paths"
exec "$ferry" ingress --manifests "$dir/manifests" --listen "127.0.0.1:$port" --listen-tls none --admin 127.0.0.1:0 \
  --threads 1 --access-log-format none
