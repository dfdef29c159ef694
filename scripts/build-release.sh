#!/usr/bin/env bash
# The release build Ferry is deployed and benchmarked with: SwiftPM's release configuration with run-time
# exclusivity checks off in every module, SwiftNIO included (Ferry's own targets already turn them off in
# Package.swift; flags there cannot reach dependencies). The checks trap on overlapping accesses the
# compiler could not rule out at build time; on the proxy's data path they cost about 5 % of CPU per
# request inside SwiftNIO (measured with perf), and SwiftNIO-based servers are commonly built this way.
# Debug builds and the test suite keep every check. The build has its own scratch path, so it does not
# invalidate a plain `swift build -c release` in .build.
#   scripts/build-release.sh            # prints the binary's path: .build/optimized/release/ferry
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --scratch-path .build/optimized "$@" >&2
echo ".build/optimized/release/ferry"
