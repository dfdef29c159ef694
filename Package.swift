// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Ferry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        // PBKDF2 for proxy users' password hashes (CryptoExtras).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.0"),
        // TLS to upstreams (clusters with tls:, the Kubernetes API server) and on listeners.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        // HTTP/2 to clients (ALPN h2, h2c with prior knowledge).
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // Reading certificates where configuration is checked (names, validity, key match); already in the
        // build through AsyncHTTPClient.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        // The Kubernetes API client (list + watch): streaming bodies, the kubeconfig's TLS.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Lock-free, created-once metric handles on the data path (already in the build through SwiftNIO).
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.2.0"),
    ],
    targets: [
        // Pure values and algorithms: no I/O, no NIO. Route, policy and address code runs per request on the
        // event loops; as in FerryProxy, its release build skips dynamic exclusivity checks (~2% of CPU
        // per forward-proxy request, measured with perf).
        .target(
            name: "FerryModel",
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // YAML decoding and validation with precise diagnostics.
        .target(
            name: "FerryConfig",
            dependencies: [
                "FerryModel", .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Kubernetes objects, manifest decoding and the translators to Ferry configuration; no sockets.
        .target(
            name: "FerryKubernetes",
            dependencies: ["FerryModel", .product(name: "Yams", package: "Yams")]
        ),
        // The I/O side of the Kubernetes API: list + watch of the kinds the roles read (never on the data path).
        .target(
            name: "FerryKubernetesClient",
            dependencies: [
                "FerryKubernetes", "FerryModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Kernel rules: kube-proxy's iptables (and later nftables) layouts rendered from a ServicePortTable,
        // and the packet tracer; pure (applying them is the role's job).
        .target(
            name: "FerryDataplane",
            dependencies: ["FerryModel", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The data plane on SwiftNIO.
        .target(
            name: "FerryProxy",
            dependencies: [
                "FerryModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: [
                // The data plane is single-threaded per event loop and its handlers are not shared;
                // dynamic exclusivity checks cost ~2% of CPU per request there (measured with perf).
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
            ]
        ),
        // Role presets: options -> configuration + services.
        .target(
            name: "FerryRoles",
            dependencies: [
                "FerryModel", "FerryConfig", "FerryProxy", "FerryKubernetes", "FerryKubernetesClient", "FerryDataplane",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The request reader's fuzzer (scripts/fuzz.sh): random mutation, or libFuzzer with -DLIBFUZZER.
        .executableTarget(
            name: "ferry-fuzz",
            dependencies: ["FerryProxy"]
        ),
        .executableTarget(
            name: "ferry",
            dependencies: [
                "FerryRoles", "FerryKubernetes", "FerryKubernetesClient", "FerryProxy", "FerryDataplane",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The fake API server filled with a large cluster, for bench/kube-scale.py (not part of `ferry`).
        .executableTarget(
            name: "ferry-bench-apiserver",
            dependencies: [
                "FerryTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Origins and helpers shared by tests; never linked into `ferry`.
        .target(
            name: "FerryTestSupport",
            dependencies: [
                "FerryModel", "FerryProxy", "FerryConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(name: "FerryModelTests", dependencies: ["FerryModel"]),
        .testTarget(name: "FerryConfigTests", dependencies: ["FerryConfig", "FerryModel"]),
        .testTarget(name: "FerryKubernetesTests", dependencies: ["FerryKubernetes", "FerryModel"]),
        .testTarget(name: "FerryDataplaneTests", dependencies: ["FerryDataplane", "FerryModel"]),
        // The roles' pure parts (no sockets, no processes).
        .testTarget(name: "FerryRolesTests", dependencies: ["FerryRoles", "FerryModel", "FerryKubernetes", "FerryConfig"]),
        .testTarget(
            name: "FerryProxyTests",
            dependencies: [
                "FerryProxy", "FerryModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "FerryIntegrationTests",
            dependencies: [
                "FerryRoles", "FerryConfig", "FerryProxy", "FerryModel", "FerryKubernetes", "FerryKubernetesClient", "FerryDataplane", "FerryTestSupport",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
