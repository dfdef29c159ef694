#!/usr/bin/env bash
# The ferry binary with Swift's standard library linked in (--static-swift-stdlib): it needs only the C
# library and its companions at run time, so it runs on a bare base image (Containerfile). Release build
# with exclusivity checks off in every module, as scripts/build-release.sh. Then checks what it promises:
# `ldd` names only C-level libraries, and the binary alone in an empty folder, with an empty environment,
# serves `ferry demo`. Prints the binary's path.
#   scripts/build-static.sh            # .build/static/release/ferry
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ferry --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --scratch-path .build/static "$@" >&2
binary=.build/static/release/ferry

# Only the C library and its companions (libstdc++ and libgcc_s for the C++ parts of the runtime, zlib).
allowed='^(linux-vdso|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s|libz|ld-linux[^ ]*)\.so'
unexpected=$(ldd "$binary" | awk '{print $1}' | sed 's|.*/||' | grep -Ev "$allowed" || true)
if [ -n "$unexpected" ]; then
  echo "build-static: $binary links libraries a bare image lacks: $unexpected" >&2
  exit 1
fi

# Alone in an empty folder, no environment: ferry demo answers through its proxy.
empty=$(mktemp -d)
cp "$binary" "$empty/ferry"
port=$((20000 + RANDOM % 20000))
(cd "$empty" && exec env -i ./ferry demo --listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" >"$empty.log" 2>&1) &
pid=$!
ok=""
for _ in $(seq 1 50); do
  if curl -fsS --max-time 2 "http://127.0.0.1:$port/" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$empty"
if [ -z "$ok" ]; then
  echo "build-static: ferry demo did not answer when run alone from an empty folder:" >&2
  cat "$empty.log" >&2
  rm -f "$empty.log"
  exit 1
fi
rm -f "$empty.log"
echo "build-static: ldd shows only C-level libraries; ferry demo serves from an empty folder" >&2
echo "$binary"
