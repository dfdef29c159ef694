#!/usr/bin/env bash
# Runs the shared benchmark harness (../shared/bench, not part of this repository) with Ferry added
# beside nginx, HAProxy and Envoy, on the L7 scenarios. Results go to bench-results/.
# Rows: `ferry` (ferry run, one route), `ferry-ingress-1x1` (ferry ingress, one Ingress with one path) and
# `ferry-ingress-200x5` (ferry ingress, 200 Ingresses with 5 paths each; see bench/ingress-manifests.py).
#   scripts/bench.sh                 # l7-ka and l7-close, 3 rounds
#   scripts/bench.sh --rounds 5      # extra arguments go to ferrybench.py
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${FERRY_BENCH_HARNESS:-../shared/bench/ferrybench.py}
[ -f "$harness" ] || { echo "no benchmark harness at $harness (set FERRY_BENCH_HARNESS)" >&2; exit 1; }
scripts/build-release.sh
mkdir -p bench-results
cat > bench-results/ingress-targets.conf <<CONF
l7  ferry-ingress-1x1     18111  -  $PWD/bench/ferry-ingress-l7.sh @@PORT@@ @@BACKEND_PORT@@ @@RUN_DIR@@ 1 1
l7  ferry-ingress-200x5   18112  -  $PWD/bench/ferry-ingress-l7.sh @@PORT@@ @@BACKEND_PORT@@ @@RUN_DIR@@ 200 5
CONF
FERRY_L7_CMD="$PWD/bench/ferry-l7.sh @@PORT@@ @@BACKEND_PORT@@ @@RUN_DIR@@" \
  python3 "$harness" --scenarios l7-ka,l7-close \
    --targets direct,nginx,haproxy,envoy,ferry,ferry-ingress-1x1,ferry-ingress-200x5 \
    --extra-file "$PWD/bench-results/ingress-targets.conf" --out "$PWD/bench-results" "$@"
