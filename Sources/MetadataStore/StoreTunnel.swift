import CDqliteShim
import ClusterAuth
import ClusterModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The store's public port. The in-process dqlite node listens only on an
/// abstract Unix socket (which libdqlite opens to its own process alone);
/// this listener takes members' and clients' TCP connections, runs the
/// cluster handshake (``ClusterAuthResponderHandler``, purpose store), and
/// only then joins the connection to the dqlite socket. A connection
/// without the cluster secret never reaches dqlite: it cannot join, read or
/// write the store. (go-dqlite's `app` package proxies its TLS the same way.)
public final class StoreTunnel: Sendable {
    private let listener: any Channel
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let logger: Logger

    private init(listener: any Channel, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>, logger: Logger) {
        self.listener = listener
        self.connections = connections
        self.logger = logger
    }

    /// Listens on `address` and carries authenticated connections to the
    /// dqlite node's abstract socket `dqliteSocket` ("@name", as
    /// ``DqliteNode/boundAddress`` gives it).
    public static func start(
        listen address: NodeAddress, dqliteSocket: String, secret: ClusterSecret,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handshakeTimeout: TimeAmount = ClusterAuthResponderHandler.defaultTimeout,
        logger: Logger = Logger(label: "tessera.store.tunnel")
    ) async throws -> StoreTunnel {
        guard dqliteSocket.hasPrefix("@"), dqliteSocket.count > 1 else {
            throw DqliteNodeError(operation: "store tunnel", code: -1, message: "\(dqliteSocket) is not an abstract socket")
        }
        let name = String(dqliteSocket.dropFirst())
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ClusterAuthResponderHandler(
                            secret: secret, purpose: .store, timeout: handshakeTimeout, logger: logger,
                            onAccepted: { accepted in joinToDqlite(accepted, socket: name) }))
                }
            }
            .bind(host: address.host, port: address.port).get()
        logger.info("store port listening (cluster handshake required)", metadata: ["address": "\(address)"])
        return StoreTunnel(listener: listener, connections: connections, logger: logger)
    }

    /// Connects to the dqlite socket on the accepted channel's event loop
    /// and glues the two together.
    private static func joinToDqlite(_ accepted: any Channel, socket name: String) -> EventLoopFuture<Void> {
        let loop = accepted.eventLoop
        let fd = tessera_connect_abstract(name)
        guard fd >= 0 else {
            return loop.makeFailedFuture(DqliteNodeError(operation: "connect @\(name)", code: errno, message: "the local store is not listening"))
        }
        let (outer, inner) = ChannelGlue.pair()
        // Both channels run on `loop`: the glue pair is not thread-safe.
        let glue = NIOLoopBound((outer, inner), eventLoop: loop)
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(glue.value.1) }
            }
            .withConnectedSocket(fd)
            .flatMapThrowing { local in
                accepted.closeFuture.whenComplete { _ in local.close(promise: nil) }
                try accepted.pipeline.syncOperations.addHandler(glue.value.0)
            }
    }

    /// The bound port (useful with port 0).
    public var port: Int? { listener.localAddress?.port }

    /// Stops listening and closes every tunnelled connection.
    public func stop() async {
        try? await listener.close()
        for channel in connections.withLockedValue({ Array($0.values) }) { try? await channel.close() }
    }
}
