#!/usr/bin/env bash
# Runs the shared benchmark harness (../shared/bench, not part of this repository) with Ferry added
# beside nginx, HAProxy and Envoy, on the L7 scenarios. Results go to bench-results/<run id>/.
#   scripts/bench.sh                 # l7-ka and l7-close, 3 rounds
#   scripts/bench.sh --rounds 5      # extra arguments go to ferrybench.py
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${FERRY_BENCH_HARNESS:-../shared/bench/ferrybench.py}
[ -f "$harness" ] || { echo "no benchmark harness at $harness (set FERRY_BENCH_HARNESS)" >&2; exit 1; }
swift build -c release
mkdir -p bench-results
FERRY_L7_CMD="$PWD/bench/ferry-l7.sh @@PORT@@ @@BACKEND_PORT@@ @@RUN_DIR@@" \
  python3 "$harness" --scenarios l7-ka,l7-close --targets direct,nginx,haproxy,envoy,ferry --out "$PWD/bench-results" "$@"
