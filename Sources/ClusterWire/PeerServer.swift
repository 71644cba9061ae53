import ClusterAuth
import ClusterModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The peer port: accepts connections from other nodes and answers their
/// requests with a ``PeerRequestHandler``.
///
/// With a cluster secret, a connection must first prove it (the cluster
/// handshake, purpose peer); nothing it sends before reaches the frame
/// decoder. Per connection the first frame must then be a hello; the server answers with
/// the highest common version. Then requests run concurrently (at most
/// ``maxInFlightPerConnection``, beyond which the connection stops reading)
/// and replies go out as they complete. Undecodable bytes, an oversized
/// length, an unknown frame type, or a frame a server does not take get an
/// error frame and a close. A request frame of unknown kind or with bad
/// fields, whose length was valid, gets a `failure(badRequest)` reply and
/// the connection goes on: the frame boundary is intact, so nothing after it
/// is misread.
public final class PeerServer: Sendable {
    /// Requests one connection may have running at once.
    public static let maxInFlightPerConnection = PeerServerConnectionStateMachine.defaultMaxInFlight

    private let host: String
    private let port: Int
    private let nodeID: NodeID
    private let handler: any PeerRequestHandler
    private let group: any EventLoopGroup
    private let logger: Logger
    private let helloTimeout: TimeAmount
    private let secret: ClusterSecret?
    private let state = NIOLockedValueBox(ServerState())

    private struct ServerState {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var isShutDown = false
    }

    /// How long an accepted connection may take to send its hello before it is closed.
    public static let defaultHelloTimeout = TimeAmount.seconds(2)

    /// Creates a server; nothing listens until ``start()``.
    public init(
        host: String, port: Int, nodeID: NodeID, handler: any PeerRequestHandler,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        helloTimeout: TimeAmount = PeerServer.defaultHelloTimeout, secret: ClusterSecret? = nil,
        logger: Logger = Logger(label: "tessera.peer")
    ) {
        self.helloTimeout = helloTimeout
        self.secret = secret
        self.host = host
        self.port = port
        self.nodeID = nodeID
        self.handler = handler
        self.group = group
        var logger = logger
        logger[metadataKey: "node"] = "\(nodeID)"
        self.logger = logger
    }

    /// Binds the port and starts accepting connections. A server starts once;
    /// after ``shutdown()`` make a new one (on the same port if wanted).
    public func start() async throws {
        let (nodeID, handler, logger, state, helloTimeout, secret) = (nodeID, handler, logger, state, helloTimeout, secret)
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
        if let userTimeout = PeerSocketOptions.userTimeout {
            bootstrap = bootstrap.childChannelOption(userTimeout, value: PeerSocketOptions.userTimeoutMilliseconds)
        }
        let listener = try await bootstrap.childChannelInitializer { channel in
            let accepted = state.withLockedValue { state in
                guard !state.isShutDown else { return false }
                state.connections[ObjectIdentifier(channel)] = channel
                return true
            }
            guard accepted else { return channel.close() }
            channel.closeFuture.whenComplete { _ in
                _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
            }
            return channel.eventLoop.makeCompletedFuture {
                if let secret {
                    // The hello timer below bounds the handshake as well.
                    try channel.pipeline.syncOperations.addHandler(
                        ClusterAuthResponderHandler(secret: secret, purpose: .peer, timeout: helloTimeout, logger: logger))
                }
                try channel.pipeline.syncOperations.addHandlers(
                    ByteToMessageHandler(PeerFrameDecoder()),
                    PeerFrameEncoder(),
                    PeerServerConnectionHandler(
                        localNodeID: nodeID, requestHandler: handler,
                        maxInFlight: PeerServer.maxInFlightPerConnection, helloTimeout: helloTimeout,
                        logger: logger))
            }
        }
        .bind(host: host, port: port).get()

        let lateShutdown = state.withLockedValue { state in
            guard !state.isShutDown else { return true }
            state.listener = listener
            return false
        }
        if lateShutdown {
            try? await listener.close()
            return
        }
        logger.notice("peer port listening", metadata: ["address": "\(listener.localAddress.map { "\($0)" } ?? "?")"])
    }

    /// The TCP port the server is bound to (useful with port 0); nil before ``start()``.
    public var boundPort: Int? {
        state.withLockedValue { $0.listener?.localAddress?.port }
    }

    /// Connections open now.
    var connectionCount: Int {
        state.withLockedValue { $0.connections.count }
    }

    /// The channels of the open connections.
    var openConnections: [any Channel] {
        state.withLockedValue { Array($0.connections.values) }
    }

    /// Stops listening and closes every connection. Requests still running
    /// in the handler finish; their replies are dropped.
    public func shutdown() async {
        let (listener, connections) = state.withLockedValue { state in
            state.isShutDown = true
            defer {
                state.listener = nil
                state.connections = [:]
            }
            return (state.listener, Array(state.connections.values))
        }
        try? await listener?.close()
        for channel in connections { try? await channel.close() }
        logger.debug("peer port shut down")
    }
}
