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
    /// Where each load leaves its translation, for the status syncer.
    let translations: IngressTranslations

    public init(settings: IngressRole.Settings, caches: KubernetesCaches, server: String, translations: IngressTranslations = IngressTranslations()) {
        self.settings = settings
        self.caches = caches
        self.server = server
        self.translations = translations
    }

    /// What `ferry ingress` watches; Services and EndpointSlices, Ingresses and Secrets in `namespaces`
    /// when some are given (IngressClasses are cluster-wide).
    public static func resources(namespaces: [String]) -> [WatchedResource] {
        WatchedResource.inNamespaces([.ingresses, .services, .endpointSlices, .secrets], namespaces) + [.ingressClasses]
    }

    public var name: String { "the Kubernetes API at \(server)" }

    public func stamp() -> SourceStamp? {
        SourceStamp([String(caches.generation)])
    }

    public func load(version: Int) throws -> ConfigSnapshot {
        var translation = IngressTranslator.translate(caches.manifestSet, options: settings.options)
        // Objects the API server holds that Ferry cannot read: their last readable version serves.
        translation.notes += caches.refused.map { "\($0.kind) \($0.key) cannot be read (\($0.problem)); its last readable version is served, if any" }
        translations.set(translation)
        var config = IngressRole.snapshot(translation, settings: settings, version: version)
        config.source = name
        return config
    }
}
