import FerryModel

/// Follows one new TCP connection through the capture rules as rendered (`CaptureRules.iptables`, read back
/// rule by rule), the way the kernel's nat table would: from a process of the Pod or node (OUTPUT, with its
/// UID and GID), or arriving from elsewhere (PREROUTING: the node's Pods in node scope, the app's inbound
/// port in Pod scope). Says which rule decided and where the connection goes. Pure.
public enum CaptureTracer {
    /// Where the connection starts.
    public enum Origin: String, Sendable, CaseIterable {
        /// A process in the Pod's (or node's) own network namespace: nat OUTPUT.
        case local
        /// A packet arriving on an interface: nat PREROUTING.
        case arriving
    }

    public struct Connection: Sendable {
        public var destination: IPAddress
        public var destinationPort: Int
        public var origin: Origin
        /// The process's UID and GID (local connections; the proxy's own are never captured).
        public var uid: Int
        public var gid: Int
        /// Leaves through loopback (a destination on this host).
        public var loopback: Bool

        public init(destination: IPAddress, destinationPort: Int, origin: Origin = .local, uid: Int = 0, gid: Int = 0, loopback: Bool? = nil) {
            self.destination = destination
            self.destinationPort = destinationPort
            self.origin = origin
            self.uid = uid
            self.gid = gid
            self.loopback = loopback ?? [IPRange(parsing: "127.0.0.0/8")!, IPRange(parsing: "::1/128")!].contains { $0.contains(destination) }
        }
    }

    public struct Step: Sendable, Hashable {
        public var chain: String
        public var rule: String
    }

    public struct Result: Sendable {
        /// `REDIRECT to :15001`, `DNAT to 10.0.0.9:15001`, or `not captured`.
        public var action: String
        /// The rules that matched, in order (jumps and the deciding one).
        public var steps: [Step]
    }

    struct Rule {
        var chain: String
        var text: String
        var target: String
        var toPorts: String?
        var toDestination: String?
        var outLoopback = false
        var destination: IPRange?
        var ports: [Int]?
        var uid: Int?
        var gid: Int?
        var comment: String?
    }

    public static func trace(_ connection: Connection, options: CaptureOptions) -> Result {
        let ipv6: Bool = if case .v6 = connection.destination { true } else { false }
        let rules = parse(CaptureRules.iptables(options, ipv6: ipv6))
        var steps: [Step] = []
        // The built-in chains' jumps into Ferry's, in the order the kernel meets them.
        let entries = CaptureRules.jumps(options).filter { ($0.chain == "OUTPUT") == (connection.origin == .local) }
        for entry in entries {
            let chain = entry.rule.last!
            steps.append(Step(chain: entry.chain, rule: "-A \(entry.chain) " + entry.rule.joined(separator: " ")))
            if let result = walk(chain, connection, rules, &steps) { return result }
        }
        return Result(action: "not captured (no rule redirects it)", steps: steps)
    }

    /// Walks `chain`; a result when a rule decided (RETURN ends the walk as "not captured").
    static func walk(_ chain: String, _ c: Connection, _ rules: [Rule], _ steps: inout [Step]) -> Result? {
        for rule in rules where rule.chain == chain && matches(rule, c) {
            steps.append(Step(chain: chain, rule: rule.text))
            switch rule.target {
            case "RETURN":
                return Result(action: "not captured" + (rule.comment.map { " (\($0))" } ?? ""), steps: steps)
            case "REDIRECT":
                return Result(action: "REDIRECT to :\(rule.toPorts ?? "?")", steps: steps)
            case "DNAT":
                return Result(action: "DNAT to \(rule.toDestination ?? "?")", steps: steps)
            default:
                if let result = walk(rule.target, c, rules, &steps) { return result }
            }
        }
        return nil
    }

    static func matches(_ rule: Rule, _ c: Connection) -> Bool {
        if rule.outLoopback && !c.loopback { return false }
        if let range = rule.destination, !range.contains(c.destination) { return false }
        if let ports = rule.ports, !ports.contains(c.destinationPort) { return false }
        if let uid = rule.uid, uid != c.uid { return false }
        if let gid = rule.gid, gid != c.gid { return false }
        return true
    }

    /// The `-A` lines of an `iptables-restore` text, as rules.
    static func parse(_ text: String) -> [Rule] {
        var rules: [Rule] = []
        for line in text.split(separator: "\n") where line.hasPrefix("-A ") {
            let words = tokens(String(line))
            var rule = Rule(chain: words[1], text: String(line), target: "")
            var i = 2
            while i < words.count {
                let word = words[i], next = i + 1 < words.count ? words[i + 1] : ""
                switch word {
                case "-j": rule.target = next; i += 1
                case "-o": rule.outLoopback = next == "lo"; i += 1
                case "-d": rule.destination = IPRange(parsing: next); i += 1
                case "--dports": rule.ports = next.split(separator: ",").compactMap { Int($0) }; i += 1
                case "--uid-owner": rule.uid = Int(next); i += 1
                case "--gid-owner": rule.gid = Int(next); i += 1
                case "--to-ports": rule.toPorts = next; i += 1
                case "--to-destination": rule.toDestination = next; i += 1
                case "--comment": rule.comment = next.hasPrefix("ferry capture: ") ? String(next.dropFirst("ferry capture: ".count)) : next; i += 1
                default: break
                }
                i += 1
            }
            rules.append(rule)
        }
        return rules
    }

    /// Words of a rule line, a quoted comment as one word.
    static func tokens(_ line: String) -> [String] {
        var words: [String] = [], current = "", quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle(); continue }
            if ch == " " && !quoted {
                if !current.isEmpty { words.append(current); current = "" }
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// As `ferry rules explain --capture` prints it.
    public static func describe(_ result: Result, _ c: Connection) -> String {
        let host: String = if case .v6 = c.destination { "[\(c.destination)]" } else { c.destination.description }
        var text = "connection tcp → \(host):\(c.destinationPort) (\(c.origin == .local ? "from a local process, uid \(c.uid) gid \(c.gid)" : "arriving from elsewhere"))\n"
        for step in result.steps { text += "  \(step.chain): \(step.rule)\n" }
        text += "  → \(result.action)\n"
        return text
    }
}
