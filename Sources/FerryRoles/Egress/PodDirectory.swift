import FerryKubernetes
import FerryKubernetesClient
import FerryModel
import NIOConcurrencyHelpers

/// The Pod behind each client address, from a watch of Pods: the table is rebuilt when the watch changes
/// its cache (a Pod added, moved to another address, gone), on the first lookup after the change, so a
/// lookup is a dictionary probe under a lock.
public final class PodDirectory: SourceIdentityLookup, Sendable {
    private let caches: KubernetesCaches
    private let table = NIOLockedValueBox<(generation: Int, byAddress: [IPAddress: SourceIdentity])>((-1, [:]))

    public init(caches: KubernetesCaches) {
        self.caches = caches
    }

    public func identity(of address: IPAddress) -> SourceIdentity? {
        let generation = caches.generation
        if let found = table.withLockedValue({ $0.generation == generation ? $0.byAddress[address.unmappingIPv4] : nil }) {
            return found
        }
        return table.withLockedValue { current in
            if current.generation != generation {
                current = (generation, PodAddressTable.build(caches.manifestSet(of: .pods).pods))
            }
            return current.byAddress[address.unmappingIPv4]
        }
    }
}
