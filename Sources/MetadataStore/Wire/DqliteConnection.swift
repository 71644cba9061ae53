import ClusterAuth
import ClusterModel
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Why a connection could not carry a request.
public enum DqliteConnectionError: Error, Hashable, Sendable {
    /// TCP connect failed or timed out.
    case connectFailed(String)
    /// The connection closed (or was closed) with the request in flight.
    case closed
    /// No answer within the request timeout; the connection was closed.
    case timedOut
    /// The node's store port holds another cluster secret than this client's
    /// (``ClusterAuthError/isMismatch``): it refused the connection.
    case refused(String)
}

/// A request waiting for its answer, in the order requests were written.
struct DqlitePendingRequest {
    /// Bytes of the request frame.
    var bytes: ByteBuffer
    /// QUERY_SQL: collect ROWS batches until the one without a continuation.
    var expectsRows: Bool
    /// Fulfilled with the (merged) response.
    var promise: EventLoopPromise<DqliteResponse>
}

/// Thin handler: sends the protocol version once active, writes requests,
/// matches responses FIFO, merges multi-part ROWS, fails everything pending on
/// close or error.
final class DqliteClientHandler: ChannelDuplexHandler {
    typealias InboundIn = DqliteFrame
    typealias OutboundIn = DqlitePendingRequest
    typealias OutboundOut = ByteBuffer

    private var pending: CircularBuffer<DqlitePendingRequest> = []
    private var partialRows: DqliteRowsPart?

    func channelActive(context: ChannelHandlerContext) {
        // dqlite doc/protocol.md "Setup": the first word is the protocol version.
        var buffer = context.channel.allocator.buffer(capacity: 8)
        buffer.writeDqliteUInt64(DqliteFrame.protocolVersion)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending.append(request)
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let head = pending.first else {
            // An answer nobody asked for: the stream is out of step.
            context.fireErrorCaught(DqliteWireError(.unexpectedResponse("type \(frame.type) with nothing pending")))
            context.close(promise: nil)
            return
        }
        let response: DqliteResponse
        do {
            response = try DqliteResponse(frame: frame)
        } catch {
            failAll(error)
            context.close(promise: nil)
            return
        }
        if head.expectsRows, case .rows(let part) = response {
            var merged = partialRows ?? DqliteRowsPart(columns: part.columns, rows: [], hasMore: false)
            merged.rows.append(contentsOf: part.rows)
            merged.hasMore = part.hasMore
            if part.hasMore {
                partialRows = merged
                return
            }
            partialRows = nil
            pending.removeFirst().promise.succeed(.rows(merged))
            return
        }
        partialRows = nil
        pending.removeFirst().promise.succeed(response)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(DqliteConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or other socket error is a lost connection to the caller.
        failAll(error is DqliteWireError ? error : DqliteConnectionError.closed)
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        while let request = pending.popFirst() { request.promise.fail(error) }
        partialRows = nil
    }
}

/// One TCP connection to a dqlite node. Requests are answered in order; the
/// client above sends one at a time.
public final class DqliteConnection: Sendable {
    /// Where it is connected.
    public let address: NodeAddress
    private let channel: Channel
    private let requestTimeout: TimeAmount

    private init(address: NodeAddress, channel: Channel, requestTimeout: TimeAmount) {
        self.address = address
        self.channel = channel
        self.requestTimeout = requestTimeout
    }

    /// Connects and sends the protocol version. With a `secret`, the
    /// cluster handshake runs first (``ClusterAuthInitiatorHandler``) and
    /// must succeed within `connectTimeout`; a refusal is a `connectFailed`
    /// that says so.
    public static func connect(
        to address: NodeAddress, group: EventLoopGroup, connectTimeout: TimeAmount = .seconds(2),
        requestTimeout: TimeAmount = .seconds(10), secret: ClusterSecret? = nil
    ) async throws -> DqliteConnection {
        // The handshake's outcome, taken from the handler as it is added:
        // by the time `connect` returns, a refusal may have closed the channel.
        let handshake = NIOLockedValueBox<EventLoopFuture<Void>?>(nil)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let secret {
                        let initiator = ClusterAuthInitiatorHandler(secret: secret, purpose: .store, timeout: connectTimeout)
                        try channel.pipeline.syncOperations.addHandler(initiator)
                        handshake.withLockedValue { $0 = initiator.authenticated }
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DqliteFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(DqliteClientHandler())
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            throw DqliteConnectionError.connectFailed("\(address): \(error)")
        }
        if let authenticated = handshake.withLockedValue({ $0 }) {
            do {
                try await authenticated.get()
            } catch let error as ClusterAuthError where error.isMismatch {
                channel.close(promise: nil)
                throw DqliteConnectionError.refused("\(address): \(error)")
            } catch {
                channel.close(promise: nil)
                throw DqliteConnectionError.connectFailed("\(address): \(error)")
            }
        }
        return DqliteConnection(address: address, channel: channel, requestTimeout: requestTimeout)
    }

    /// True while the TCP connection is open.
    public var isActive: Bool { channel.isActive }

    /// Sends one request and waits for its answer (all ROWS batches merged),
    /// at most `timeout` (default: the connection's request timeout).
    public func request(_ request: DqliteRequest, timeout: TimeAmount? = nil) async throws -> DqliteResponse {
        var bytes = channel.allocator.buffer(capacity: 64)
        try request.encode(into: &bytes)
        let promise = channel.eventLoop.makePromise(of: DqliteResponse.self)
        let pending = DqlitePendingRequest(bytes: bytes, expectsRows: request.expectsRows, promise: promise)
        let channel = self.channel
        let timeout = channel.eventLoop.scheduleTask(in: timeout ?? requestTimeout) {
            promise.fail(DqliteConnectionError.timedOut)
            channel.close(promise: nil)
        }
        channel.writeAndFlush(pending).whenFailure { error in
            promise.fail(error is ChannelError ? DqliteConnectionError.closed : error)
        }
        defer { timeout.cancel() }
        return try await promise.futureResult.get()
    }

    /// Closes the connection; dqlite rolls back any open transaction on it.
    public func close() {
        channel.close(promise: nil)
    }
}
