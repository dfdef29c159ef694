import FerryKubernetes
import FerryKubernetesClient
import FerryModel

/// The cluster's Ingresses, IngressClasses, Services, EndpointSlices and Secrets, kept by list + watch, as a
/// configuration source: the same `IngressTranslator` the manifest files feed, re-run when a watch changes
/// a cache (the stamp is the caches' generation).
public struct IngressAPISource: ConfigSource {
    public let settings: IngressRole.Settings
    public let caches: KubernetesCaches
    public let server: String

    public init(settings: IngressRole.Settings, caches: KubernetesCaches, server: String) {
        self.settings = settings
        self.caches = caches
        self.server = server
    }

    /// What `ferry ingress` watches; Services and EndpointSlices, Ingresses and Secrets in `namespace`
    /// when one is set (IngressClasses are cluster-wide).
    public static func resources(namespace: String?) -> [WatchedResource] {
        var namespaced: [WatchedResource] = [.ingresses, .services, .endpointSlices, .secrets]
        for index in namespaced.indices { namespaced[index].namespace = namespace }
        return namespaced + [.ingressClasses]
    }

    public var name: String { "the Kubernetes API at \(server)" }

    public func stamp() -> SourceStamp? {
        SourceStamp([String(caches.generation)])
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        let translation = IngressTranslator.translate(caches.manifestSet, options: settings.options)
        var config = IngressRole.snapshot(translation, settings: settings, version: version)
        config.source = name
        return config
    }
}
