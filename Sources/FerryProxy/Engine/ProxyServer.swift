import FerryModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The data plane: binds the listeners of the snapshot in force, serves the admin listener, applies new
/// snapshots make-before-break, and drains on shutdown. A `Service` of the process's `ServiceGroup`.
public final class ProxyServer: Service, Sendable {
    public let group: EventLoopGroup
    public let metrics: ProxyMetrics
    let store: SnapshotStore
    let accessLog: AccessLogWriter
    let loops: LoopLocals
    let logger: Logger
    private let state = NIOLockedValueBox(ServerState())
    /// Serialises `start`, `apply` and `drain`.
    private let reloadLock = NIOLock()
    private let readinessCheck = NIOLockedValueBox<(@Sendable () -> String?)?>(nil)

    struct ServerState {
        var listeners: [String: BoundListener] = [:]
        var admin: AdminServer?
        var ready = false
        var started = false
        var reloads = 0
        var lastReloadError: String?
    }

    struct BoundListener: Sendable {
        /// `Listener.endpoint`: a change of it rebinds.
        var address: String
        var channel: Channel
        var environment: ListenerEnvironment
    }

    /// Compiles `config` (resolving endpoint names: call off the event loops).
    public init(config: ConfigSnapshot, group: EventLoopGroup, accessLog: AccessLogWriter? = nil, metrics: ProxyMetrics = ProxyMetrics(), logger: Logger = Logger(label: "ferry")) throws {
        self.group = group
        self.metrics = metrics
        self.logger = logger
        self.store = SnapshotStore(try CompiledSnapshot(config, metrics: metrics))
        self.accessLog = accessLog ?? AccessLogWriter(metrics: metrics)
        self.loops = try LoopLocals(group: group)
    }

    public var snapshot: ConfigSnapshot { store.current.config }
    public var isReady: Bool { state.withLockedValue { $0.ready } }

    /// A role's own condition for `/ready` besides draining (a controller is not ready before its first
    /// full sync): nil when ready, else why not.
    public func setReadinessCheck(_ check: @escaping @Sendable () -> String?) {
        readinessCheck.withLockedValue { $0 = check }
    }

    /// Why `/ready` answers 503 now, or nil.
    public var notReadyReason: String? {
        guard isReady else { return "draining" }
        return readinessCheck.withLockedValue { $0 }?()
    }

    /// Where each listener is bound (useful with port 0).
    public var listenerAddresses: [String: SocketAddress] {
        state.withLockedValue { s in s.listeners.compactMapValues { $0.channel.localAddress } }
    }

    /// Downstream connections open now, on every listener (tunnels included).
    public func openDownstreamConnections() async -> Int {
        await loops.openCount(listener: nil)
    }

    public var adminAddress: SocketAddress? {
        state.withLockedValue { $0.admin?.channel.localAddress }
    }

    // MARK: lifecycle

    /// Binds the admin listener and every listener of the snapshot in force.
    public func start() throws {
        try reloadLock.withLock {
            let snapshot = store.current
            if let admin = snapshot.config.admin {
                let server = try AdminServer.bind(admin.address, group: group, server: self)
                state.withLockedValue { $0.admin = server }
            }
            for listener in snapshot.config.listeners {
                let bound = try bind(listener, snapshot: snapshot)
                state.withLockedValue { $0.listeners[listener.name] = bound }
            }
            state.withLockedValue {
                $0.ready = true
                $0.started = true
            }
            let bound = state.withLockedValue { s in
                s.listeners.map { "\($0.key)=\(HTTPProxyHandler.describe($0.value.channel.localAddress!))" }.sorted()
            }
            let admin = adminAddress.map(HTTPProxyHandler.describe) ?? "off"
            logger.info("ferry started", metadata: ["listeners": "\(bound.joined(separator: ","))", "admin": "\(admin)", "version": "\(snapshot.config.version)"])
        }
    }

    public func run() async throws {
        if !state.withLockedValue({ $0.started }) {
            try start()
        }
        try? await gracefulShutdown()
        try await drain()
    }

    /// Stops accepting, lets in-flight requests finish within the drain timeout, then closes what is left.
    public func drain() async throws {
        let (listeners, admin) = state.withLockedValue { s -> ([BoundListener], AdminServer?) in
            s.ready = false
            let l = Array(s.listeners.values)
            s.listeners.removeAll()
            return (l, s.admin)
        }
        let timeout = store.current.config.drainTimeout
        logger.info("draining", metadata: ["connections_timeout": "\(DurationText(timeout))"])
        for listener in listeners {
            try? await listener.channel.close()
        }
        loops.quiesce(listener: nil)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var open = await loops.openCount(listener: nil)
        while open > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            open = await loops.openCount(listener: nil)
        }
        if open > 0 {
            logger.warning("drain timeout reached; closing the remaining connections", metadata: ["connections": "\(open)"])
            loops.closeAll(listener: nil)
        }
        loops.closeIdleUpstreams()
        if let admin { try? await admin.channel.close() }
        state.withLockedValue { $0.admin = nil }
        accessLog.stop()
    }

    // MARK: reload

    /// Applies a new configuration: new listeners are bound first, then the snapshot is swapped, then
    /// removed listeners stop accepting and drain. On any error the old snapshot stays in force.
    public func apply(_ config: ConfigSnapshot) throws {
        try reloadLock.withLock {
            let compiled = try CompiledSnapshot(config, metrics: metrics)
            let old = store.current
            let current = state.withLockedValue { $0.listeners }
            var added: [String: BoundListener] = [:]
            do {
                for listener in config.listeners {
                    // Same name, new address: the new one is bound next to the old, which drains below.
                    if let existing = current[listener.name], existing.address == (listener.udpProxy != nil ? "udp " : "") + listener.endpoint { continue }
                    added[listener.name] = try bind(listener, snapshot: compiled)
                }
            } catch {
                for (_, listener) in added { listener.channel.close(promise: nil) }
                throw error
            }
            store.publish(compiled)
            var removed: [BoundListener] = []
            state.withLockedValue { s in
                for (name, listener) in s.listeners where added[name] != nil || !config.listeners.contains(where: { $0.name == name }) {
                    removed.append(listener)
                    s.listeners[name] = nil
                }
                for (name, listener) in added { s.listeners[name] = listener }
                s.reloads += 1
                s.lastReloadError = nil
            }
            for listener in removed {
                listener.channel.close(promise: nil)
                loops.quiesce(listener: ObjectIdentifier(listener.environment))
            }
            if old.config.admin?.address != config.admin?.address {
                logger.warning("the admin address changed; it takes effect after a restart")
            }
            let bound = added.map { "\($0.key)=\(HTTPProxyHandler.describe($0.value.channel.localAddress!))" }.sorted()
            logger.info("configuration applied", metadata: [
                "version": "\(config.version)", "listeners": "\(bound.joined(separator: ","))",
                "removed": "\(removed.map { $0.environment.listenerName }.sorted().joined(separator: ","))",
            ])
        }
    }

    /// Records a refused reload for `/config_dump` and the log.
    public func recordRefusedReload(_ message: String) {
        state.withLockedValue { $0.lastReloadError = message }
    }

    var reloadStatus: (count: Int, lastError: String?) {
        state.withLockedValue { ($0.reloads, $0.lastReloadError) }
    }

    // MARK: binding

    private func bind(_ listener: Listener, snapshot: CompiledSnapshot) throws -> BoundListener {
        let environment = ListenerEnvironment(
            listenerName: listener.name, store: store, metrics: metrics, accessLog: accessLog, loops: loops,
            boundSnapshot: snapshot)
        let limits = snapshot.listeners[listener.name]!.decoderLimits
        let isTCPProxy = listener.tcpProxy != nil
        let intercept = listener.intercept
        if listener.udpProxy != nil {
            let channel = try StartError.naming("listener \"\(listener.name)\" (UDP)", address: listener.endpoint) {
                try DatagramBootstrap(group: group)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(UDPProxyHandler(environment: environment, local: environment.loops.local(for: channel.eventLoop)))
                        }
                    }
                    .bind(host: listener.address.host, port: listener.address.port)
                    .wait()
            }
            return BoundListener(address: "udp \(listener.endpoint)", channel: channel, environment: environment)
        }
        let channel = try StartError.naming("listener \"\(listener.name)\"", address: listener.endpoint) {
            var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            // No child options: accepted sockets inherit TCP_NODELAY from the listening socket (NIO sets it
            // there), and each child option costs a syscall and futures per connection.
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let intercept {
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                        try channel.pipeline.syncOperations.addHandler(InterceptHandler(
                            environment: environment, local: environment.loops.local(for: channel.eventLoop), remoteAddress: channel.remoteAddress, settings: intercept))
                    } else if isTCPProxy {
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                        try channel.syncOptions?.setOption(.recvAllocator, value: TCPProxyHandler.recvAllocator)
                        try channel.pipeline.syncOperations.addHandler(TCPProxyHandler(
                            environment: environment, local: environment.loops.local(for: channel.eventLoop), remoteAddress: channel.remoteAddress))
                    } else {
                        try DownstreamPipeline.configure(channel, environment: environment, limits: limits)
                    }
                }
            }
            if intercept?.mode == .tproxy {
                // TPROXY delivers connections addressed elsewhere: the socket must accept them (CAP_NET_ADMIN).
                let level = listener.address.host.contains(":") ? SocketOptionLevel(IPPROTO_IPV6) : SocketOptionLevel(IPPROTO_IP)
                let name = listener.address.host.contains(":") ? SocketOptionName(75) : SocketOptionName(19)  // IPV6_TRANSPARENT, IP_TRANSPARENT
                bootstrap = bootstrap.serverChannelOption(ChannelOptions.Types.SocketOption(level: level, name: name), value: 1)
            }
            guard let path = listener.unixSocket else {
                return try bootstrap.bind(host: listener.address.host, port: listener.address.port).wait()
            }
            let channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
            chmod(path, 0o600)
            return channel
        }
        return BoundListener(address: listener.endpoint, channel: channel, environment: environment)
    }
}

extension ProxyServer {
    /// Errors the server reports about binding and configuration, with what to do about them.
    public struct StartError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        /// Runs a bind and turns its failure into a message that names what could not listen where.
        static func naming<T>(_ what: String, address: String, _ bind: () throws -> T) throws -> T {
            do {
                return try bind()
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                throw StartError(message: "\(what) cannot listen on \(address): the address is in use; stop the other process or choose another address")
            } catch let error as IOError where error.errnoCode == EACCES {
                throw StartError(message: "\(what) cannot listen on \(address): permission denied; ports below 1024 need privileges")
            } catch {
                throw StartError(message: "\(what) cannot listen on \(address): \(error)")
            }
        }
    }
}

extension ProxyServer {
    /// Starts the access-log writer thread.
    public func accessLogStart() {
        accessLog.start()
    }
}
