import Foundation
import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import NIOPosix

/// An iSCSI target server: listens on the configured portals, runs login and
/// full-feature sessions per connection, and hands SCSI commands to the
/// target devices.
public final class ISCSIServer: Sendable {
    /// The configuration it was created with.
    public let configuration: ISCSIServerConfiguration
    private let group: any EventLoopGroup
    private let registry = SessionRegistry()
    private let logger: Logger
    private let state = LockedBox(ServerState())

    private struct ServerState {
        var channels: [any Channel] = []
        var login: LoginConfiguration?
        /// The devices by lowercased target name; targets come and go while
        /// the server runs (``addTarget(_:executor:)``, ``removeTarget(named:)``).
        var executors: [String: any SCSITaskExecutor] = [:]
        /// What SendTargets lists for a target added later.
        var sendTargetsAddresses: [String] = []
    }

    /// Creates a server; nothing listens until ``start()``.
    public init(
        configuration: ISCSIServerConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "tessera.iscsi")
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        // RFC 7143 §4.2.7.1: iSCSI names compare case-insensitively.
        let executors = Dictionary(
            configuration.targets.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        state.withLock { $0.executors = executors }
    }

    /// Binds every portal and starts accepting connections.
    public func start() async throws {
        var bound: [(ISCSIServerConfiguration.Portal, any Channel)] = []
        do {
            for portal in configuration.portals {
                let environment = ConnectionEnvironment(
                    login: { [state, configuration] in
                        var login = state.withLock { $0.login } ?? configuration.login
                        login.portalGroupTag = portal.portalGroupTag
                        return login
                    },
                    target: { [state] name in state.withLock { $0.executors[name] } },
                    portalGroupTag: portal.portalGroupTag,
                    queueDepth: configuration.queueDepth, nopInInterval: configuration.nopInInterval,
                    nopInTimeout: configuration.nopInTimeout, idlePoll: configuration.idlePoll, registry: registry,
                    logger: logger, limits: configuration.limits)
                let limits = configuration.limits
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 256)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.maxMessagesPerRead, value: 16)
                    // Above the high mark the channel is not writable: ReadGate stops reading.
                    .childChannelOption(
                        .writeBufferWaterMark,
                        value: ChannelOptions.Types.WriteBufferWaterMark(
                            low: limits.writeBufferLowWaterMark, high: limits.writeBufferHighWaterMark)
                    )
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let frame = ISCSIFrameHandler()
                            let connection = ISCSIConnectionHandler(environment: environment, frameHandler: frame)
                            try channel.pipeline.syncOperations.addHandlers(ReadGate(), frame, connection)
                        }
                    }
                    .bind(host: portal.host, port: portal.port).get()
                bound.append((portal, channel))
            }
        } catch {
            for (_, channel) in bound { try? await channel.close() }
            throw error
        }
        // SendTargets lists every portal with its real port (RFC 7143 §4.3 / Appendix C).
        var login = configuration.login
        let addresses = bound.map { portal, channel in
            "\(Self.addressText(portal.host)):\(channel.localAddress?.port ?? portal.port),\(portal.portalGroupTag)"
        }
        for index in login.targets.indices where login.targets[index].sendTargetsAddresses.isEmpty {
            login.targets[index].sendTargetsAddresses = addresses
        }
        state.withLock {
            $0.channels = bound.map(\.1)
            $0.login = login
            $0.sendTargetsAddresses = login.targets.first?.sendTargetsAddresses ?? addresses
        }
        logger.info("iSCSI server listening", metadata: ["portals": "\(addresses)"])
    }

    /// Replaces the addresses SendTargets reports for every target (RFC 7143
    /// Appendix C TargetAddress values, "host:port,tag"): in a cluster, every
    /// member's portals, so a host learns all its paths from any one node.
    /// Logins already under way keep the list they started with.
    public func setSendTargetsAddresses(_ addresses: [String]) {
        state.withLock { state in
            state.sendTargetsAddresses = addresses
            guard var login = state.login else { return }
            for index in login.targets.indices { login.targets[index].sendTargetsAddresses = addresses }
            state.login = login
        }
    }

    /// Serves a target from now on: logins and SendTargets know it (it is
    /// listed on the addresses SendTargets lists for the others) and its
    /// commands go to `executor`. A target of the same name is replaced.
    public func addTarget(_ description: TargetDescription, executor: any SCSITaskExecutor) {
        let key = description.name.lowercased()
        state.withLock { state in
            var description = description
            description.sendTargetsAddresses = state.sendTargetsAddresses
            var login = state.login ?? configuration.login
            login.targets.removeAll { $0.name.lowercased() == key }
            login.targets.append(description)
            state.login = login
            state.executors[key] = executor
        }
        logger.notice("serving target", metadata: ["target": "\(description.name)"])
    }

    /// Stops serving a target: new logins to it are refused as for an
    /// unknown target (RFC 7143 §11.13.5, 0x0203 not found) and its sessions
    /// are closed. Returns how many sessions were closed.
    @discardableResult
    public func removeTarget(named name: String) -> Int {
        let key = name.lowercased()
        state.withLock { state in
            var login = state.login ?? configuration.login
            login.targets.removeAll { $0.name.lowercased() == key }
            state.login = login
            state.executors[key] = nil
        }
        let sessions = registry.snapshot().filter { $0.targetName.lowercased() == key }
        for session in sessions { closeSession(tsih: session.tsih, reason: "target \(name) deleted") }
        logger.notice("stopped serving target", metadata: ["target": "\(name)", "sessions-closed": "\(sessions.count)"])
        return sessions.count
    }

    /// The targets served now, by name.
    public var targetNames: [String] {
        state.withLock { ($0.login ?? configuration.login).targets.map(\.name) }
    }

    /// The TCP ports the portals are bound to, in configuration order (useful with port 0).
    public var boundPorts: [Int] {
        state.withLock { $0.channels.compactMap { $0.localAddress?.port } }
    }

    /// Number of live normal sessions.
    public var sessionCount: Int { registry.count }

    /// Number of open connections, logged in or not.
    public var connectionCount: Int { registry.connectionCount() }

    /// Every live normal session, by TSIH.
    public var sessions: [ISCSISessionInfo] { registry.snapshot() }

    /// Ends the session with `tsih` as an administrator asked (its connection
    /// is closed; the host sees the connection drop and logs in again unless
    /// it is told otherwise); false when no such session is live.
    @discardableResult
    public func closeSession(tsih: UInt16, reason: String) -> Bool {
        guard let channel = registry.channel(tsih: tsih) else { return false }
        logger.notice(
            "closing a session as an administrator asked",
            metadata: [
                "tsih": "\(tsih)", "initiator-address": "\(channel.remoteAddress.map { "\($0)" } ?? "?")",
                "reason": "\(reason)",
            ])
        channel.close(promise: nil)
        return true
    }

    /// Stops listening and closes every connection.
    public func shutdown() async {
        let channels = state.withLock { state in
            defer { state.channels = [] }
            return state.channels
        }
        for channel in channels { try? await channel.close() }
        for channel in registry.allConnections { try? await channel.close() }
    }

    private static func addressText(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }
}

/// A value behind a lock, for the little shared state the server keeps.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
