import FerryDataplane
import Foundation

/// Writes kube-proxy's nftables table with `nft -f` (one atomic transaction per sync) and reads it back.
/// Needs CAP_NET_ADMIN.
enum NFTablesApplier {
    /// `ip` or `ip6`.
    static func family(ipv6: Bool) -> String { ipv6 ? "ip6" : "ip" }

    /// `nft list table ip kube-proxy` (or `ip6`); empty when the table does not exist. `terse` leaves out the
    /// elements of sets and maps.
    static func listing(ipv6: Bool = false, terse: Bool = false) throws -> String {
        let result = try SystemCommand.run("nft", (terse ? ["-t"] : []) + ["list", "table", family(ipv6: ipv6), NFTablesNames.table], missing: "install the nftables package")
        if result.status == 0 { return result.stdout }
        if result.stderr.contains("No such file or directory") { return "" }
        throw SystemCommand.Failure(description: "nft list table \(family(ipv6: ipv6)) \(NFTablesNames.table) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (it needs root)")
    }

    /// The chains and sets of the table now, to find stale ones (elements left out: they can be many).
    static func existing(ipv6: Bool = false) throws -> (chains: Set<String>, sets: Set<String>) {
        var chains = Set<String>(), sets = Set<String>()
        for raw in try listing(ipv6: ipv6, terse: true).split(separator: "\n") {
            let words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 3, words.last == "{" else { continue }
            if words[0] == "chain" { chains.insert(words[1]) }
            if words[0] == "set" { sets.insert(words[1]) }
        }
        return (chains, sets)
    }

    /// Runs an `nft -f` script as one transaction: all of it applies, or none.
    static func run(_ script: String) throws {
        let result = try SystemCommand.run("nft", ["-f", "-"], input: script, missing: "install the nftables package")
        guard result.status == 0 else {
            throw SystemCommand.Failure(description: "nft refused the transaction: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// How nft prints `script`'s table once loaded into an empty table: the script runs in a new network
    /// namespace of its own (the node's rules are not touched), then the table is listed there.
    static func listingAfterLoading(_ script: String, ipv6: Bool = false) throws -> String {
        let result = try SystemCommand.run("unshare", ["--net", "sh", "-c", "nft -f - && nft list table \(family(ipv6: ipv6)) \(NFTablesNames.table)"], input: script, missing: "install util-linux")
        guard result.status == 0 else {
            throw SystemCommand.Failure(description: "cannot load the next rules into a scratch namespace: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (it needs root)")
        }
        return result.stdout
    }

    /// Removes the kube-proxy table of both families; a missing table is fine.
    static func cleanup() throws {
        for family in ["ip", "ip6"] {
            let result = try SystemCommand.run("nft", ["delete", "table", family, NFTablesNames.table], missing: "install the nftables package")
            if result.status != 0 && !result.stderr.contains("No such file or directory") {
                throw SystemCommand.Failure(description: "nft delete table \(family) \(NFTablesNames.table) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
    }
}
