import ClusterAuth
import ClusterModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sends peer requests to other nodes over the peer port: one connection
/// per destination, opened on the first request (500 ms connect timeout,
/// then the hello handshake), requests multiplexed on it by id. A lost
/// connection fails every request waiting on it with `unavailable` at once,
/// and the next request opens a new one. Every `send` is bounded by its own
/// timeout and never throws.
public final class PeerClient: PeerTransport {
    private let nodeID: NodeID
    private let address: @Sendable (NodeID) -> NodeAddress?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(ClientState())

    private struct ClientState {
        var connections: [NodeID: PeerClientConnection] = [:]
        var isClosed = false
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
        let connection = state.withLockedValue { state -> PeerClientConnection? in
            guard !state.isClosed else { return nil }
            if let connection = state.connections[node] { return connection }
            let connection = PeerClientConnection(
                localNode: nodeID, remoteNode: node, eventLoop: group.next(), handshakeTimeout: handshakeTimeout,
                secret: secret, logger: logger)
            state.connections[node] = connection
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
