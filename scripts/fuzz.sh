#!/usr/bin/env bash
# Fuzzes Ferry's HTTP/1.1 request reader for a set time (Sources/ferry-fuzz, invariants in
# FerryProxy/HTTP1/HTTP1ParserCheck.swift). Stops at the first crash or broken invariant and says so.
#   scripts/fuzz.sh [MINUTES]             libFuzzer, coverage-guided (default 30 minutes)
#   scripts/fuzz.sh --random [MINUTES]    random mutation of a built-in corpus, no instrumentation
#   FERRY_FUZZ_RESPONSES=1 scripts/fuzz.sh ...   the response reader (its corpus: .build/fuzz-corpus-responses)
# libFuzzer keeps what it learns in .build/fuzz-corpus (seeded with requests of every framing); an input
# that breaks an invariant is written to .build/fuzz-failure.bin, a crashing one to .build/fuzz-crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=libfuzzer
if [ "${1:-}" = "--random" ]; then mode=random; shift; fi
minutes=${1:-30}
export FERRY_FUZZ_FAILURE=.build/fuzz-failure.bin
# libFuzzer's own handler, not Swift's backtracer, answers a crash (so it writes the input).
export SWIFT_BACKTRACE=enable=no
seconds=$((minutes * 60))
if [ "$mode" = random ]; then
  swift build -c release --product ferry-fuzz >&2
  exec .build/release/ferry-fuzz "$seconds"
fi
# lld: gold fails on this link (an internal error in its diagnostics).
swift build -c release --product ferry-fuzz --scratch-path .build/fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER -Xswiftc -use-ld=lld >&2
if [ "${FERRY_FUZZ_RESPONSES:-}" = 1 ]; then
  corpus=.build/fuzz-corpus-responses
  mkdir -p "$corpus"
  # The first byte picks the request methods the responses answer.
  printf '\000HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' > "$corpus/length"
  printf '\001HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' > "$corpus/chunked"
  printf '\002HTTP/1.0 200 OK\r\n\r\nuntil the close' > "$corpus/close"
  printf '\003HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes' > "$corpus/upgrade"
  printf '\007HTTP/1.1 200 Connection established\r\nContent-Length: 9\r\n\r\ntunnelled' > "$corpus/connect"
  exec .build/fuzz/release/ferry-fuzz -max_total_time="$seconds" -max_len=2048 -artifact_prefix=.build/fuzz-crash- -print_final_stats=1 "$corpus"
fi
corpus=.build/fuzz-corpus
mkdir -p "$corpus"
printf 'GET /a?b=c HTTP/1.1\r\nHost: a\r\n\r\n' > "$corpus/get"
printf 'POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n' > "$corpus/length"
printf 'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n' > "$corpus/chunked"
printf 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nrest' > "$corpus/connect"
printf 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes' > "$corpus/upgrade"
exec .build/fuzz/release/ferry-fuzz -max_total_time="$seconds" -max_len=2048 -artifact_prefix=.build/fuzz-crash- -print_final_stats=1 "$corpus"
