import FerryConfig
import FerryKubernetes
import FerryModel

/// `ferry ingress`: an Ingress controller fed by Kubernetes manifests on disk or by the API server. The
/// objects are translated by `IngressTranslator` into two listeners — `ingress-http` (plain HTTP; hosts with
/// a certificate redirect to HTTPS) and `ingress-https` (TLS, the certificate chosen by SNI from the
/// Ingresses' Secrets) — and their clusters; edits re-route live.
public enum IngressRole {
    public static let defaultListen = HostPort(host: "0.0.0.0", port: 8080)
    public static let defaultListenTLS = HostPort(host: "0.0.0.0", port: 8443)
    public static let defaultAdmin = HostPort(host: "127.0.0.1", port: 10254)

    public struct Settings: Sendable {
        public var manifests: [String]
        public var listen: HostPort
        /// Nil: no HTTPS listener.
        public var listenTLS: HostPort?
        public var admin: HostPort
        public var options: IngressOptions
        /// The certificate for names no Ingress has one for, when `--default-ssl-certificate` gives none.
        public var fallbackCertificate: SelfSignedCertificate?

        public init(manifests: [String], listen: HostPort = IngressRole.defaultListen, listenTLS: HostPort? = IngressRole.defaultListenTLS,
                    admin: HostPort = IngressRole.defaultAdmin, options: IngressOptions = IngressOptions()) {
            self.manifests = manifests
            self.listen = listen
            self.listenTLS = listenTLS
            self.admin = admin
            self.options = options
            self.fallbackCertificate = listenTLS == nil ? nil : IngressRole.makeFallbackCertificate()
        }
    }

    /// The translation of the manifests under `paths`. Throws `ManifestError`.
    public static func translate(_ paths: [String], options: IngressOptions) throws -> IngressTranslation {
        IngressTranslator.translate(try ManifestLoader.load(paths: paths), options: options)
    }

    /// Translates the objects and checks the certificates they name (`certify`).
    public static func translate(_ objects: ManifestSet, settings: Settings) -> IngressTranslation {
        var translation = IngressTranslator.translate(objects, options: settings.options)
        certify(&translation, settings: settings)
        return translation
    }

    /// The whole configuration for a translation: `ingress-http`, `ingress-https` (unless `listenTLS` is
    /// nil), their clusters and the notes.
    public static func snapshot(_ translation: IngressTranslation, settings: Settings, version: Int) -> ConfigSnapshot {
        var listeners = [Listener(name: "ingress-http", address: settings.listen, http: HTTPConnectionManager(virtualHosts: translation.httpVirtualHosts))]
        if let address = settings.listenTLS, let tls = translation.listenerTLS {
            var https = Listener(name: "ingress-https", address: address, http: HTTPConnectionManager(virtualHosts: translation.virtualHosts))
            https.tls = tls
            listeners.append(https)
        }
        var config = ConfigSnapshot(
            version: version,
            source: "manifests: " + settings.manifests.joined(separator: " "),
            admin: AdminSettings(address: settings.admin),
            listeners: listeners,
            clusters: translation.clusters)
        config.notes = translation.notes
        return config
    }

    /// `ferry explain`: how the manifests route one request.
    public static func explain(paths: [String], options: IngressOptions, request: IngressExplainer.Request) throws -> String {
        explain(try ManifestLoader.load(paths: paths), options: options, request: request)
    }

    /// `ferry explain`: how these objects (files, or the live cluster's) route one request.
    public static func explain(_ objects: ManifestSet, options: IngressOptions, request: IngressExplainer.Request) -> String {
        let translation = IngressTranslator.translate(objects, options: options)
        var text = IngressExplainer.explain(request, translation: translation)
        let skipped = translation.selection.filter { !$0.selected }
        if !skipped.isEmpty {
            text += "not served by class \(options.ingressClass):\n" + skipped.map { "  Ingress \($0.ingress): \($0.reason)\n" }.joined()
        }
        if !translation.notes.isEmpty {
            text += "notes:\n" + translation.notes.map { "  \($0)\n" }.joined()
        }
        return text
    }
}

extension IngressRole {
    /// The Ingress controller's configuration source on manifest files (edits re-route live).
    public static func source(settings: Settings) -> KubernetesObjectSource {
        KubernetesObjectSource(.files(settings.manifests)) { objects, version in
            snapshot(translate(objects, settings: settings), settings: settings, version: version)
        }
    }
}
