#!/usr/bin/env bash
# The ferry binary with Swift's standard library linked in (--static-swift-stdlib): it needs only the C
# library and its companions at run time, so it runs on a bare base image (Containerfile). Release build
# with exclusivity checks off in every module, as scripts/build-release.sh. Prints the binary's path.
#   scripts/build-static.sh            # .build/static/release/ferry
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ferry --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --scratch-path .build/static "$@" >&2
echo ".build/static/release/ferry"
