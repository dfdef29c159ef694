import FerryModel
import NIOCore
import NIOPosix

/// The addresses of this machine's interfaces (for `--nodeport-addresses` CIDRs).
public enum LocalAddresses {
    public static func all() -> [IPAddress] {
        guard let interfaces = try? System.enumerateDevices() else { return [] }
        var addresses: [IPAddress] = []
        for device in interfaces {
            guard let ip = device.address?.ipAddress, let address = IPAddress(parsing: ip.split(separator: "%").first.map(String.init) ?? ip) else { continue }
            if !addresses.contains(address) { addresses.append(address) }
        }
        return addresses
    }
}
