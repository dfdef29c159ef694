import FerryConfig
import FerryModel
import Foundation
import Testing

struct ConfigDecodingTests {
    @Test func aFullConfigurationDecodesEveryField() throws {
        let yaml = """
        admin: {address: 127.0.0.1:9901}
        access_log: {format: envoy}
        drain_timeout: 10s
        listeners:
          - name: web
            address: 0.0.0.0:8080
            http:
              limits: {max_request_line: 8KiB, max_header_bytes: 32KiB, max_headers: 50, max_request_body: 1MiB}
              timeouts: {request_headers: 5s, idle: 30s}
              virtual_hosts:
                - name: shop
                  domains: [shop.example.com, "*.shop.example.com"]
                  routes:
                    - match: {prefix: /api, headers: {x-canary: "true", x-debug: {present: true}}, methods: [GET]}
                      forward: {cluster: api-canary}
                    - name: split
                      match: {prefix: /api}
                      forward: {clusters: [{name: api, weight: 90}, {name: api-canary, weight: 10}]}
                      timeout: 2s
                      retries: {attempts: 2, on: [connect-failure, reset, "503", 5xx]}
                    - match: {exact: /healthz}
                      direct_response: {status: 200, body: "ok"}
                    - match: {regex: "/old/.*"}
                      redirect: {scheme: https, path: /new, status: 308}
        clusters:
          - name: api
            endpoints: [10.0.0.5:8080, "[::1]:8080"]
            load_balancing: ring_hash
            hash_on: {header: X-User}
          - name: api-canary
            endpoints: []
            load_balancing: least_request
            connect_timeout: 250ms
        """
        let config = try ConfigLoader.decode(yaml: yaml, file: "full.yaml")
        #expect(config.accessLog.format == .envoy)
        #expect(config.drainTimeout == .seconds(10))
        let http = config.listeners[0].http
        #expect(http.limits.maxRequestLineBytes == 8192)
        #expect(http.limits.maxHeaderBytes == 32768)
        #expect(http.limits.maxRequestBodyBytes == 1_048_576)
        #expect(http.timeouts.requestHeaders == .seconds(5))
        let routes = http.virtualHosts[0].routes
        #expect(routes[0].name == "shop/0")
        #expect(routes[0].match.methods == ["GET"])
        #expect(routes[0].match.headers.count == 2)
        #expect(routes[1].timeout == .seconds(2))
        #expect(routes[1].retries.attempts == 2)
        #expect(routes[1].retries.on == [.connectFailure, .reset, .status(503), .anyServerError])
        guard case .forward(let weighted) = routes[1].action else { Issue.record("expected forward"); return }
        #expect(weighted == [WeightedCluster(name: "api", weight: 90), WeightedCluster(name: "api-canary", weight: 10)])
        guard case .redirect(let redirect) = routes[3].action else { Issue.record("expected redirect"); return }
        #expect(redirect.status == 308 && redirect.scheme == "https")
        #expect(config.clusters[0].loadBalancing == .ringHash(.header("x-user")))
        #expect(config.clusters[0].endpoints[1] == HostPort(host: "::1", port: 8080))
        #expect(config.clusters[1].connectTimeout == .milliseconds(250))
    }

    @Test func defaultsFollowTheReferenceLimits() throws {
        let config = try ConfigLoader.decode(yaml: """
        listeners:
          - {name: web, address: "127.0.0.1:8080", http: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, forward: {cluster: c}}]}]}}
        clusters:
          - {name: c, endpoints: ["127.0.0.1:9000"]}
        """, file: "min.yaml")
        let http = config.listeners[0].http
        #expect(http.limits.maxRequestLineBytes == 16 * 1024)
        #expect(http.limits.maxHeaderBytes == 64 * 1024)
        #expect(http.limits.maxHeaderCount == 100)
        #expect(http.timeouts.requestHeaders == .seconds(30))
        #expect(http.timeouts.idle == .seconds(60))
        #expect(http.virtualHosts[0].routes[0].timeout == .seconds(15))
        #expect(config.clusters[0].connectTimeout == .seconds(5))
        #expect(config.drainTimeout == .seconds(25))
        #expect(config.admin?.address == HostPort(host: "127.0.0.1", port: 9901))
        #expect(config.accessLog.format == .json)
    }

    @Test func everyExampleFileIsValid() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for file in files {
            _ = try ConfigLoader.load(path: examples.appendingPathComponent(file).path)
        }
    }
}

/// Every refusal names the file, the line and the field, and says what is expected.
struct ConfigDiagnosticsTests {
    static let base = """
    listeners:
      - name: web
        address: 127.0.0.1:8080
        http:
          virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
                - match: {prefix: /a}
                  forward: {cluster: api}
                - match: {prefix: /b}
                  forward: {cluster: api}
                - match: {prefix: PLACEHOLDER}
                  forward: {cluster: api}
    clusters:
      - name: api
        endpoints: [127.0.0.1:9000]
    """

    func diagnostics(_ yaml: String) -> [ConfigDiagnostic] {
        do {
            _ = try ConfigLoader.decode(yaml: yaml, file: "ferry.yaml")
            return []
        } catch let error as ConfigError {
            return error.diagnostics
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func aPathWithoutLeadingSlashNamesFileLineAndFieldPath() {
        let found = diagnostics(Self.base.replacingOccurrences(of: "PLACEHOLDER", with: "api"))
        #expect(found.count == 1)
        #expect(found.first?.description == "ferry.yaml:13:31: listeners[0].http.virtual_hosts[0].routes[2].match.prefix: must start with \"/\"")
    }

    @Test func anUnknownFieldIsAnErrorWithADidYouMean() {
        let yaml = Self.base.replacingOccurrences(of: "PLACEHOLDER", with: "/c").replacingOccurrences(of: "endpoints:", with: "endpoint:")
        let found = diagnostics(yaml)
        #expect(found.contains { $0.message == "unknown field \"endpoint\"; did you mean \"endpoints\"?" && $0.path == "clusters[0].endpoint" && $0.line == 17 })
    }

    @Test func anUnknownClusterIsNamedWithASuggestion() {
        let yaml = Self.base.replacingOccurrences(of: "PLACEHOLDER", with: "/c").replacingOccurrences(of: "forward: {cluster: api}\n    clusters", with: "forward: {cluster: apj}\n    clusters")
        let found = diagnostics(yaml.replacingOccurrences(of: "- match: {prefix: /c}\n              forward: {cluster: api}", with: "- match: {prefix: /c}\n              forward: {cluster: apj}"))
        #expect(found.contains { $0.path == "listeners[0].http.virtual_hosts[0].routes[2].forward" && $0.message.contains("unknown cluster \"apj\"; did you mean \"api\"?") })
    }

    @Test(arguments: [
        ("timeout: 15", "routes[0].timeout", "expected a duration"),
        ("timeout: soon", "routes[0].timeout", "expected a duration"),
        ("retries: {attempts: 2, on: [sometimes]}", "routes[0].retries.on[0]", "unknown retry condition"),
        ("redirect: {status: 200}", "routes[0]", "exactly one action"),
    ])
    func badRouteFieldsAreReported(extra: String, pathSuffix: String, message: String) {
        let yaml = """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            http:
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                    - match: {prefix: /}
                      forward: {cluster: api}
                      \(extra)
        clusters:
          - {name: api, endpoints: ["127.0.0.1:9000"]}
        """
        let found = diagnostics(yaml)
        #expect(found.contains { $0.path.hasSuffix(pathSuffix) && $0.message.contains(message) }, "\(found)")
    }

    @Test func manyProblemsAreReportedInOnePass() {
        let yaml = """
        listeners:
          - name: web
            address: nowhere
            http:
              virtual_hosts:
                - name: all
                  domains: ["foo.*.com"]
                  routes:
                    - match: {}
                      forward: {cluster: api}
        clusters:
          - name: api
            endpoints: [127.0.0.1:9000]
            load_balancing: round_robbin
          - name: api
            endpoints: []
        """
        let found = diagnostics(yaml)
        let messages = found.map(\.description)
        #expect(messages.contains { $0.contains("listeners[0].address: expected host:port") })
        #expect(messages.contains { $0.contains("domains[0]: invalid domain \"foo.*.com\"") })
        #expect(messages.contains { $0.contains("routes[0].match: a match needs one path condition") })
        #expect(messages.contains { $0.contains("clusters[0].load_balancing: unknown load-balancing policy \"round_robbin\"; did you mean \"round_robin\"?") })
        #expect(messages.contains { $0.contains("clusters[1]: duplicate cluster name \"api\"") })
    }

    @Test func missingRequiredFieldsAreNamed() {
        let found = diagnostics("listeners:\n  - name: web\nclusters: []\n")
        #expect(found.contains { $0.path == "listeners[0]" && $0.message.hasPrefix("missing field \"address\"") })
        #expect(found.contains { $0.path == "listeners[0]" && $0.message.hasPrefix("missing field \"http\"") })
    }

    @Test func yamlSyntaxErrorsCarryTheirLine() {
        let found = diagnostics("listeners:\n  - name: [web\nclusters: []\n")
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("YAML syntax") == true)
        #expect(found.first?.line != nil)
    }

    @Test func anUnreadableFileSaysSo() {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/ferry.yaml") }
    }

    @Test func aListenerCannotShareTheAdminAddress() {
        let yaml = """
        admin: {address: 127.0.0.1:9901}
        listeners:
          - {name: web, address: "127.0.0.1:9901", http: {virtual_hosts: []}}
        clusters: []
        """
        #expect(diagnostics(yaml).contains { $0.message.contains("admin address 127.0.0.1:9901 is already used by listener \"web\"") })
    }
}

@Suite struct RoutePolicyDecodingTests {
    /// One listener whose only virtual host has `routes` (YAML list items), and one cluster.
    static func routes(_ routes: String, cluster: String) -> String {
        let indented = routes.split(separator: "\n").map { "            " + $0 }.joined(separator: "\n")
        return "listeners:\n  - name: web\n    address: 127.0.0.1:8080\n    http:\n      virtual_hosts:\n        - name: all\n          domains: [\"*\"]\n          routes:\n\(indented)\nclusters:\n  - \(cluster)\n"
    }

    @Test func theRouteFieldsIngressAnnotationsUseAreWritableInYAML() throws {
        let yaml = Self.routes("""
        - match: {prefix: /shop, cookies: {beta: always}}
          forward: {cluster: a}
          rewrite: {regex: "^/shop(/|$)(.*)", replacement: "/$2"}
          allow_sources: [10.0.0.0/8, "fd00::/8"]
          max_request_body: 1MiB
          stream_idle_timeout: 30s
        - match: {prefix: /old}
          redirect: {url: "https://new.example/", status: 308}
        """, cluster: "{name: a, endpoints: [\"127.0.0.1:9000\"], load_balancing: ring_hash, hash_on: {cookie: session}}")
        let snapshot = try ConfigLoader.decode(yaml: yaml, file: "t.yaml")
        let route = snapshot.listeners[0].http.virtualHosts[0].routes[0]
        #expect(route.match.cookies == [CookieMatch(name: "beta", value: "always")])
        #expect(route.rewrite?.apply(to: "/shop/a/b") == "/a/b")
        #expect(route.allowedSources.map(\.description) == ["10.0.0.0/8", "fd00::/8"])
        #expect(route.maxRequestBodyBytes == 1024 * 1024)
        #expect(route.streamIdleTimeout == .seconds(30))
        guard case .redirect(let r) = snapshot.listeners[0].http.virtualHosts[0].routes[1].action else { Issue.record("no redirect"); return }
        #expect(r.url == "https://new.example/" && r.status == 308)
        #expect(snapshot.clusters[0].loadBalancing == .ringHash(.cookie("session")))
    }

    @Test func badValuesAreNamed() {
        let yaml = Self.routes("""
        - match: {prefix: /}
          forward: {cluster: a}
          allow_sources: [10.0.0.0/33]
          rewrite: {regex: "(", replacement: /}
        """, cluster: "{name: a, endpoints: [\"127.0.0.1:9000\"]}")
        do {
            _ = try ConfigLoader.decode(yaml: yaml, file: "t.yaml")
            Issue.record("accepted")
        } catch let error as ConfigError {
            let text = error.description
            #expect(text.contains("listeners[0].http.virtual_hosts[0].routes[0].allow_sources[0]: expected an address or CIDR"))
            #expect(text.contains("routes[0].rewrite.regex: invalid regular expression"))
        } catch {
            Issue.record("\(error)")
        }
    }
}

/// The listener's edge settings: path normalisation, trusted hops, upgrade protocols.
@Suite struct EdgeSettingsDecodingTests {
    static func yaml(_ http: String) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            http:
              \(http)
              virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                    - match: {prefix: /}
                      direct_response: {status: 200}
        clusters: []
        """
    }

    @Test func defaultsAreTheEdgeAndSettingsDecode() throws {
        let defaults = try ConfigLoader.decode(yaml: Self.yaml("limits: {}"), file: "t.yaml").listeners[0].http
        #expect(defaults.pathNormalization == PathNormalization(mergeSlashes: true, escapedSlashes: .reject))
        #expect(defaults.forwardedTrust == ForwardedTrust())
        #expect(defaults.upgradeProtocols.allowed == ["websocket"])
        let set = try ConfigLoader.decode(yaml: Self.yaml("""
        normalize_path: {merge_slashes: false, escaped_slashes: keep}
              forwarded: {trusted_proxies: [10.0.0.0/8]}
              upgrade_protocols: [websocket, spdy/3.1]
        """), file: "t.yaml").listeners[0].http
        #expect(set.pathNormalization == PathNormalization(mergeSlashes: false, escapedSlashes: .keep))
        #expect(set.forwardedTrust.trustedProxies == [IPRange(parsing: "10.0.0.0/8")!])
        #expect(set.upgradeProtocols.allowed == ["websocket", "spdy/3.1"])
    }

    @Test(arguments: [
        ("normalize_path: {escaped_slashes: decode}", "listeners[0].http.normalize_path.escaped_slashes: expected reject"),
        ("forwarded: {xff_trusted_hops: 1, trusted_proxies: [10.0.0.0/8]}", "set xff_trusted_hops or trusted_proxies, not both"),
        ("forwarded: {xff_trusted_hops: 99}", "listeners[0].http.forwarded.xff_trusted_hops: 99 is out of range"),
        ("forwarded: {trusted_proxies: [10.0.0.0/40]}", "expected an address or CIDR"),
        ("upgrade_protocols: [\"a,b\"]", "an upgrade protocol is a token"),
    ])
    func badEdgeSettingsAreNamed(http: String, message: String) {
        do {
            _ = try ConfigLoader.decode(yaml: Self.yaml(http), file: "t.yaml")
            Issue.record("accepted: \(http)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}

@Suite struct ForwardProxyDecodingTests {
    @Test func policiesAndAForwardProxyListener() throws {
        let yaml = """
        listeners:
          - name: egress
            address: 127.0.0.1:3128
            http: {limits: {max_connections: 50}}
            forward_proxy: {policy: outbound, connect_timeout: 2s, upstream_proxies: [".internal.example=none", "http://proxy.corp:3128"]}
        policies:
          - name: outbound
            default: allow
            guards: none
            rules:
              - deny: 10.0.0.0/8
              - allow: {domains: [.corp.example], ports: ["443", "8000-8999"], methods: [get], sources: [192.168.0.0/16], users: [alice]}
        clusters: []
        """
        let snapshot = try ConfigLoader.decode(yaml: yaml, file: "e.yaml")
        let http = snapshot.listeners[0].http
        #expect(http.limits.maxConnections == 50 && http.virtualHosts.isEmpty)
        let forward = try #require(http.forwardProxy)
        #expect(forward.connectTimeout == .seconds(2))
        #expect(forward.upstreamProxies.map(\.description) == [".internal.example=none", "http://proxy.corp:3128"])
        #expect(forward.policy.defaultAction == .allow && forward.policy.guards.isEmpty)
        #expect(forward.policy.rules.map(\.text) == ["deny 10.0.0.0/8", "allow .corp.example:443,8000-8999 methods GET from 192.168.0.0/16 for alice"])
        #expect(forward.policy.rules[1].match.methods == ["GET"])
    }

    @Test func anInterceptListenerSharesTheForwardProxysPolicy() throws {
        func yaml(_ listener: String) -> String {
            """
            listeners:
              - name: capture
                address: 0.0.0.0:15001
            \(listener.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            policies: [{name: outbound, rules: [{allow: .example.com}]}]
            clusters: []
            """
        }
        let good = try ConfigLoader.decode(yaml: yaml("forward_proxy: {policy: outbound}\nintercept: {mode: tproxy, first_bytes_timeout: 250ms}"), file: "c.yaml")
        #expect(good.listeners[0].intercept == InterceptSettings(mode: .tproxy, firstBytesTimeout: .milliseconds(250)))
        let defaults = try ConfigLoader.decode(yaml: yaml("forward_proxy: {policy: outbound}\nintercept: {}"), file: "c.yaml")
        #expect(defaults.listeners[0].intercept == InterceptSettings())
        for (listener, message) in [
            ("intercept: {}\nhttp: {virtual_hosts: []}", "listeners[0].intercept: intercept takes kernel-redirected connections for a forward proxy: the listener needs forward_proxy"),
            ("forward_proxy: {policy: outbound}\nintercept: {mode: nat}", "listeners[0].intercept.mode: unknown mode \"nat\"; expected one of: redirect, tproxy"),
        ] {
            do {
                _ = try ConfigLoader.decode(yaml: yaml(listener), file: "c.yaml")
                Issue.record("accepted: \(listener)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }
}
