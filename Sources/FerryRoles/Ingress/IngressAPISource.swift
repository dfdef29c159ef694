import FerryKubernetes
import FerryKubernetesClient
import FerryModel

/// The cluster's Ingresses, IngressClasses, Services, EndpointSlices and Secrets, kept by list + watch, as a
/// configuration source: the same `IngressTranslator` the manifest files feed, re-run when a watch changes
/// a cache. Objects Ferry cannot read are notes (their last readable version serves); each translation is
/// left in `translations` for the status syncer.
public enum IngressAPISource {
    /// What `ferry ingress` watches; Services and EndpointSlices, Ingresses and Secrets in `namespaces`
    /// when some are given (IngressClasses are cluster-wide).
    public static func resources(namespaces: [String]) -> [WatchedResource] {
        WatchedResource.inNamespaces([.ingresses, .services, .endpointSlices, .secrets], namespaces) + [.ingressClasses]
    }

    public static func source(settings: IngressRole.Settings, caches: KubernetesCaches, server: String, translations: IngressTranslations) -> KubernetesObjectSource {
        KubernetesObjectSource(.cluster(caches, server: server)) { objects, version in
            var translation = IngressRole.translate(objects, settings: settings)
            translation.notes += caches.refused.map { "\($0.kind) \($0.key) cannot be read (\($0.problem)); its last readable version is served, if any" }
            translations.set(translation, ingresses: objects.ingresses)
            var config = IngressRole.snapshot(translation, settings: settings, version: version)
            config.source = "the Kubernetes API at \(server)"
            return config
        }
    }
}
