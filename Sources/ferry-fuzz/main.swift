// ferry-fuzz: feeds mutated bytes to Ferry's HTTP/1.1 request reader and stops at the first broken
// invariant (`HTTP1ParserCheck`) or crash. scripts/fuzz.sh builds and runs it.
//   ferry-fuzz [SECONDS] [SEED]    random mutation of a built-in corpus for SECONDS (default 60)
//   FERRY_FUZZ_RESPONSES=1 ferry-fuzz ...   the response reader instead of the request reader
// Built with -sanitize=fuzzer -DLIBFUZZER it is a libFuzzer target instead (coverage-guided; libFuzzer's
// own options, e.g. -max_total_time=1800 CORPUS_DIR).
import FerryProxy
import Foundation

let corpus: [String] = [
    "GET /a?b=c HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
    "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    "POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nrest",
    "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nframes",
    "\r\nGET / HTTP/1.0\r\nContent-Length: 2, 2\r\n\r\nok",
]

let responseCorpus: [String] = [
    "\u{0}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n",
    "\u{1}HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    "\u{2}HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the close",
    "\u{3}HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes",
]

/// Requests, or (with FERRY_FUZZ_RESPONSES=1) responses.
let fuzzResponses = ProcessInfo.processInfo.environment["FERRY_FUZZ_RESPONSES"] == "1"

func check(_ bytes: [UInt8]) {
    if let problem = fuzzResponses ? HTTP1ParserCheck.responseViolation(in: bytes) : HTTP1ParserCheck.violation(in: bytes) {
        // The input, byte for byte, for a regression test (the text below replaces bytes that are not UTF-8).
        let path = ProcessInfo.processInfo.environment["FERRY_FUZZ_FAILURE"] ?? "ferry-fuzz-failure.bin"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        FileHandle.standardError.write(Data("ferry-fuzz: invariant broken (input in \(path)) on \(String(decoding: bytes, as: UTF8.self).debugDescription)\n\(problem)\n".utf8))
        abort()
    }
}

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    check(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
#else
let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 60 : 60
let seed: UInt64 = CommandLine.arguments.count > 2 ? UInt64(CommandLine.arguments[2]) ?? 1 : UInt64(Date().timeIntervalSince1970)
var generator = HTTP1Mutator(seed: seed)
print("ferry-fuzz: random mutation for \(Int(seconds)) s, seed \(seed)")
let alphabet = Array("\r\n :;,0123456789abcdefABCDEF\t\u{0}\u{7f}\u{80}\u{ff}GETPOSTHTTP/1.0-chunkedContent-LengthTransfer-EncodingUpgradeConnection".utf8)
let pool = (fuzzResponses ? responseCorpus : corpus).map { Array($0.utf8) }
let deadline = Date().addingTimeInterval(seconds)
var inputs = 0
while Date() < deadline {
    for _ in 0..<1000 {
        var bytes = pool[generator.next() % pool.count]
        if generator.next() % 4 == 0 { bytes += pool[generator.next() % pool.count] }
        generator.mutate(&bytes, alphabet: alphabet, edits: 8, keep: fuzzResponses ? 1 : 0)
        check(bytes)
        inputs += 1
    }
}
print("ferry-fuzz: \(inputs) inputs, no invariant broken, no crash")
#endif
