/// How a listener canonicalises request paths before routing, access checks, request filters and rewrites
/// look at them — Envoy's `normalize_path` (always on here), `merge_slashes` and
/// `path_with_escaped_slashes_action`.
public struct PathNormalization: Sendable, Hashable, Encodable {
    /// What an encoded slash or backslash (`%2F`, `%5C`) in a path does.
    public enum EscapedSlashes: String, Sendable, Hashable, Encodable {
        /// 400: the origin may decode it into a separator Ferry did not route on (Envoy `REJECT_REQUEST`).
        case reject
        /// Left as it is (upper-cased); routing sees the undecoded form (Envoy `KEEP_UNCHANGED`).
        case keep
    }

    /// `//` becomes `/` (Envoy `merge_slashes`, on in its edge guide).
    public var mergeSlashes: Bool
    public var escapedSlashes: EscapedSlashes

    public init(mergeSlashes: Bool = true, escapedSlashes: EscapedSlashes = .reject) {
        self.mergeSlashes = mergeSlashes
        self.escapedSlashes = escapedSlashes
    }

    enum CodingKeys: String, CodingKey {
        case mergeSlashes = "merge_slashes", escapedSlashes = "escaped_slashes"
    }
}

/// The one canonical form of an origin-form request target, which is then routed, checked and forwarded
/// (RFC 3986 §6.2.2): percent-encoded unreserved characters decoded, other escapes upper-cased, dot segments
/// removed (§5.2.4, encoded dots and `..;params` included), repeated slashes merged. The query is kept as
/// received. Targets that a canonical form would change the meaning of are refused.
public enum RequestPath {
    public enum Outcome: Equatable, Sendable {
        /// Already canonical (the common case: one scan, no allocation).
        case unchanged
        case normalized(String)
        /// 400, with what is wrong.
        case rejected(String)
    }

    public static func normalize(_ target: String, _ options: PathNormalization) -> Outcome {
        canonicalize(target, options).outcome
    }

    /// The outcome, and whether the canonical path has segment parameters (`;`), which matching leaves out.
    /// A canonical target (the common case) is read once, as contiguous bytes, and nothing is allocated.
    public static func canonicalize(_ target: String, _ options: PathNormalization) -> (outcome: Outcome, hasParameters: Bool) {
        var target = target
        let scanned = target.withUTF8 { bytes -> (needsWork: Bool, fragment: Bool, parameters: Bool) in
            var previous: UInt8 = 0
            var parameters = false
            var index = 0
            while index < bytes.count {
                let b = bytes[index]
                switch b {
                case UInt8(ascii: "?"):
                    // The query is kept as it is; only a fragment in it is refused.
                    var rest = index + 1
                    while rest < bytes.count {
                        if bytes[rest] == UInt8(ascii: "#") { return (false, true, parameters) }
                        rest += 1
                    }
                    return (false, false, parameters)
                case UInt8(ascii: ";"):
                    parameters = true
                case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: "#"):
                    return (true, false, parameters)
                case UInt8(ascii: "/"), UInt8(ascii: "."):
                    if previous == UInt8(ascii: "/") { return (true, false, parameters) }
                default:
                    if b <= 0x20 || b >= 0x7f { return (true, false, parameters) }
                }
                previous = b
                index += 1
            }
            return (false, false, parameters)
        }
        if scanned.fragment { return (.rejected(fragmentProblem), false) }
        if !scanned.needsWork { return (.unchanged, scanned.parameters) }
        let outcome = slowNormalize(target, options)
        switch outcome {
        case .unchanged: return (outcome, pathHasParameters(target))
        case .normalized(let path): return (outcome, pathHasParameters(path))
        case .rejected: return (outcome, false)
        }
    }

    /// Whether the path part of a target has a `;`.
    static func pathHasParameters(_ target: String) -> Bool {
        for b in target.utf8 {
            if b == UInt8(ascii: "?") { return false }
            if b == UInt8(ascii: ";") { return true }
        }
        return false
    }

    static let fragmentProblem = "a fragment (#) is never part of a request target"

    private static func slowNormalize(_ target: String, _ options: PathNormalization) -> Outcome {
        let all = Array(target.utf8)
        if all.contains(UInt8(ascii: "#")) { return .rejected(fragmentProblem) }
        let queryStart = all.firstIndex(of: UInt8(ascii: "?")) ?? all.endIndex
        guard all.first == UInt8(ascii: "/") else { return .unchanged }  // `*` of OPTIONS; validated elsewhere
        // 1. Escapes: unreserved decoded, the rest upper-cased; raw backslashes and non-ASCII refused.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(queryStart)
        var i = 0
        while i < queryStart {
            let b = all[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < queryStart,
                      let high = hexValue(all[i + 1]), let low = hexValue(all[i + 2]) else {
                    return .rejected("invalid percent-encoding in the path (a % must be followed by two hex digits)")
                }
                let value = high << 4 | low
                if isUnreserved(value) {
                    decoded.append(value)
                } else if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") {
                    if options.escapedSlashes == .reject {
                        return .rejected("an encoded slash or backslash (%2F, %5C) in the path; send the path unencoded")
                    }
                    decoded.append(contentsOf: [UInt8(ascii: "%"), upperHex(high), upperHex(low)])
                } else {
                    decoded.append(contentsOf: [UInt8(ascii: "%"), upperHex(high), upperHex(low)])
                }
                i += 3
                continue
            }
            if b == UInt8(ascii: "\\") { return .rejected("a backslash (\\) in the path") }
            if b <= 0x20 || b >= 0x7f { return .rejected("a space, control or non-ASCII byte in the path; percent-encode it") }
            decoded.append(b)
            i += 1
        }
        // 2. Segments: dot segments (also `.;x`, `..;x`) removed, empty ones merged.
        let segments = decoded.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var kept: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            let name = segment.firstIndex(of: UInt8(ascii: ";")).map { segment[..<$0] } ?? segment
            if name.elementsEqual([UInt8(ascii: ".")]) {
                trailingSlash = isLast
                continue
            }
            if name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !kept.isEmpty { kept.removeLast() }
                trailingSlash = isLast
                continue
            }
            if segment.isEmpty {
                if isLast { trailingSlash = true; continue }
                if options.mergeSlashes { continue }
            }
            trailingSlash = false
            kept.append(segment)
        }
        var path: [UInt8] = [UInt8(ascii: "/")]
        for (index, segment) in kept.enumerated() {
            if index > 0 { path.append(UInt8(ascii: "/")) }
            path.append(contentsOf: segment)
        }
        if trailingSlash, !kept.isEmpty { path.append(UInt8(ascii: "/")) }
        path.append(contentsOf: all[queryStart...])
        if path.elementsEqual(all) { return .unchanged }
        return .normalized(String(decoding: path, as: UTF8.self))
    }

    /// The path (without query) with the parameters of every segment (`;x=y`) removed, for matching: a
    /// server that ignores parameters serves `/admin;x=y` as `/admin`, so routes see it as `/admin`.
    /// Nil when the path has no parameters.
    public static func withoutParameters(_ path: Substring) -> String? {
        guard path.utf8.contains(UInt8(ascii: ";")) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        var skipping = false
        for b in path.utf8 {
            if b == UInt8(ascii: "/") { skipping = false } else if b == UInt8(ascii: ";") { skipping = true }
            if !skipping { out.append(b) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of a hex digit, or nil.
    @inline(__always)
    public static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    @inline(__always)
    static func upperHex(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "A") + v - 10 }

    /// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
    @inline(__always)
    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
