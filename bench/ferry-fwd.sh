#!/bin/sh
# Starts `ferry egress` for the shared benchmark harness's forward-proxy scenarios (fwd-ka, connect-rate,
# connect-bulk):  bench/ferry-fwd.sh PORT RUN_DIR
# Same ACL as the Squid and tinyproxy rows: clients from 127.0.0.1, destinations 127.0.0.1 only (any port,
# named in the rule so that CONNECT to the backend's port is allowed). One event loop, no access log.
set -eu
port=$1
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../.build/optimized/release/ferry}  # scripts/build-release.sh
exec "$ferry" egress --listen "127.0.0.1:$port" --admin 127.0.0.1:0 --threads 1 --access-log-format none \
  --allow "127.0.0.1/32:1-65535"
