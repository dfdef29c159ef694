#!/usr/bin/env bash
# Builds Ferry (the `ferry` binary too: process tests run it) and runs the whole test suite.
# FERRY_REQUIRE_ALL_TESTS=1 turns every "skipped: tool missing" into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
