import ClusterAuth
import ClusterModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sends peer requests to other nodes over the peer port: one connection
/// per destination and calling event loop, opened on the first request
/// (500 ms connect timeout, then the hello handshake), requests multiplexed
/// on it by id. A request sent from a NIO event loop (an iSCSI command's or
/// a peer request's task) goes out on a connection of that same loop, so
/// sending, the reply and the task's resumption need no thread hop; other
/// callers share one connection per destination on a loop of `group`. A lost
/// connection fails every request waiting on it with `unavailable` at once,
/// and the next request opens a new one. Every `send` is bounded by its own
/// timeout and never throws. Requests carry no order between them (the
/// server runs them concurrently), so several connections to one node are safe.
public final class PeerClient: PeerTransport {
    private let nodeID: NodeID
    private let address: @Sendable (NodeID) -> NodeAddress?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(ClientState())

    private struct ClientState {
        var connections: [Key: PeerClientConnection] = [:]
        var isClosed = false
    }

    /// A connection's destination and event loop (nil: the shared one of a caller off any loop).
    private struct Key: Hashable {
        var node: NodeID
        var loop: ObjectIdentifier?
    }

    /// - Parameters:
    ///   - nodeID: This node, announced in every hello.
    ///   - address: The peer port of a node, asked on every send (a new
    ///     connection goes to the address of the send that opens it); nil
    ///     for a node that is not known, whose requests get `unavailable`.
    /// How long a new connection may wait for the peer's hello answer.
    private let handshakeTimeout: TimeAmount
    /// The cluster secret every connection proves before its hello.
    private let secret: ClusterSecret?
    /// The default of that wait: a peer on the cluster network answers in well under a millisecond.
    public static let defaultHandshakeTimeout = TimeAmount.milliseconds(500)

    public init(
        nodeID: NodeID, address: @escaping @Sendable (NodeID) -> NodeAddress?,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handshakeTimeout: TimeAmount = PeerClient.defaultHandshakeTimeout, secret: ClusterSecret? = nil,
        logger: Logger = Logger(label: "tessera.peer.client")
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.secret = secret
        self.nodeID = nodeID
        self.address = address
        self.group = group
        var logger = logger
        logger[metadataKey: "node"] = "\(nodeID)"
        self.logger = logger
    }

    public func send(_ request: PeerRequest, to node: NodeID, timeout: Duration) async -> PeerReply {
        guard let address = address(node) else {
            return .failure(PeerFailure(.unavailable, detail: "no peer address for \(node)"))
        }
        do {
            try PeerFrame.request(id: 0, request).checkEncodable()
        } catch {
            return .failure(PeerFailure(.badRequest, detail: error.detail))
        }
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let key = Key(node: node, loop: current.map { ObjectIdentifier($0) })
        let connection = state.withLockedValue { state -> PeerClientConnection? in
            guard !state.isClosed else { return nil }
            if let connection = state.connections[key] { return connection }
            let connection = PeerClientConnection(
                localNode: nodeID, remoteNode: node, eventLoop: current ?? group.next(),
                handshakeTimeout: handshakeTimeout, secret: secret, logger: logger)
            state.connections[key] = connection
            return connection
        }
        guard let connection else { return .failure(PeerFailure(.unavailable, detail: "peer client closed")) }
        return await connection.send(request, to: address, timeout: TimeAmount(clamping: timeout))
    }

    /// Closes every connection; requests in flight and any later ones get `unavailable`.
    public func close() async {
        let connections = state.withLockedValue { state in
            state.isClosed = true
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in connections { await connection.close() }
    }
}

extension TimeAmount {
    /// `duration` in nanoseconds, saturating; negative becomes zero.
    init(clamping duration: Duration) {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else {
            self = .zero
            return
        }
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self =
            overflow
            ? .nanoseconds(.max) : .nanoseconds(whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue)
    }
}
