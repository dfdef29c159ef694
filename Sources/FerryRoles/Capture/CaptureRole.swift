import FerryDataplane
import FerryModel
import Foundation

/// `ferry rules capture`: writes (or prints, or removes) the kernel rules that send outbound TCP to the
/// egress proxy's intercept port. iptables: Ferry's own nat chains, replaced whole with
/// `iptables-restore --noflush` (and `ip6tables-restore` when installed), and one jump into each from
/// OUTPUT (and PREROUTING for the node scope), first in its chain; nftables: one `inet` table replaced in
/// one transaction. Everything Ferry added goes with `--cleanup`.
public enum CaptureRole {
    public enum Mode: String, Sendable, CaseIterable { case iptables, nftables }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// What would be applied, as the tools' input.
    public static func render(_ options: CaptureOptions, mode: Mode) -> String {
        switch mode {
        case .nftables:
            return "# nft -f -\n" + CaptureRules.nftables(options)
        case .iptables:
            var out = ""
            for (tool, ipv6) in [("iptables", false), ("ip6tables", true)] {
                out += "# \(tool)-restore --noflush\n" + CaptureRules.iptables(options, ipv6: ipv6)
                for jump in CaptureRules.jumps(options) {
                    out += "# \(tool) -t nat -I \(jump.chain) 1 \(jump.rule.joined(separator: " "))  (unless present)\n"
                }
            }
            return out
        }
    }

    /// Applies the rules; running it again changes nothing.
    public static func apply(_ options: CaptureOptions, mode: Mode) throws {
        switch mode {
        case .nftables:
            try check(SystemCommand.run("nft", ["-f", "-"], input: CaptureRules.nftables(options), missing: "install the nftables package"), "nft -f")
        case .iptables:
            for (tool, ipv6) in try families() {
                try check(SystemCommand.run("\(tool)-restore", ["--noflush"], input: CaptureRules.iptables(options, ipv6: ipv6)), "\(tool)-restore")
                for jump in CaptureRules.jumps(options) {
                    let present = try SystemCommand.run(tool, ["-t", "nat", "-C", jump.chain] + jump.rule).status == 0
                    if !present {
                        try check(SystemCommand.run(tool, ["-t", "nat", "-I", jump.chain, "1"] + jump.rule), "\(tool) -I \(jump.chain)")
                    }
                }
            }
        }
    }

    /// Removes every rule and chain (or the table) Ferry added; what was never there is no error.
    public static func cleanup(mode: Mode) throws {
        switch mode {
        case .nftables:
            let result = try SystemCommand.run("nft", ["delete", "table", "inet", CaptureRules.table], missing: "install the nftables package")
            if result.status != 0 && !result.stderr.contains("No such file") {
                throw Failure(description: "nft delete table inet \(CaptureRules.table): \(result.stderr)")
            }
        case .iptables:
            for (tool, _) in try families() {
                for jump in CaptureRules.everyJump {
                    // Delete every copy (a jump added by hand twice, too).
                    while try SystemCommand.run(tool, ["-t", "nat", "-D", jump.chain] + jump.rule).status == 0 {}
                }
                for chain in CaptureRules.everyChain {
                    _ = try SystemCommand.run(tool, ["-t", "nat", "-F", chain])
                    _ = try SystemCommand.run(tool, ["-t", "nat", "-X", chain])
                }
            }
        }
    }

    /// iptables, and ip6tables when it is installed.
    static func families() throws -> [(String, Bool)] {
        _ = try SystemCommand.path(of: "iptables-restore")
        return (try? SystemCommand.path(of: "ip6tables-restore")) != nil ? [("iptables", false), ("ip6tables", true)] : [("iptables", false)]
    }

    private static func check(_ result: SystemCommand.Result, _ what: String) throws {
        guard result.status == 0 else { throw Failure(description: "\(what) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }
}
