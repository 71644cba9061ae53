import ClusterAuth
import ClusterModel
import Logging
import NIOCore
import NIOPosix

/// The client side of the connection to one destination node, across
/// reconnects. Everything mutable is touched only on `eventLoop`, which is
/// also the loop of every channel it opens; `send` hops there once.
///
/// Request ids grow for the connection's whole life, so a timer or a late
/// reply of a request from an earlier channel never matches a newer one.
final class PeerClientConnection: @unchecked Sendable {  // mutable state confined to `eventLoop`
    /// How long connecting may take.
    static let connectTimeout = TimeAmount.milliseconds(500)
    /// How long the server may take to answer the hello.
    private let handshakeTimeout: TimeAmount
    /// The cluster secret this node proves before its hello (the handshake
    /// holds the hello until the server accepted); nil sends the hello at once.
    private let secret: ClusterSecret?

    let localNode: NodeID
    let remoteNode: NodeID
    let eventLoop: any EventLoop
    private let logger: Logger

    private enum Phase {
        /// No channel; the next request opens one.
        case idle
        /// Connecting; requests wait in `queued`.
        case connecting
        /// Hello sent; requests wait in `queued`.
        case handshaking(any Channel)
        /// Requests go straight out.
        case ready(any Channel)
    }

    /// A request waiting for its reply.
    private struct Pending {
        var promise: EventLoopPromise<PeerReply>
        var timer: NIOScheduledCallback
    }

    private var phase = Phase.idle
    /// Counts channels; events of an older one are ignored.
    private var generation: UInt64 = 0
    private var nextRequestID: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]
    /// Requests sent before the handshake completed, in order.
    private var queued = CircularBuffer<(id: UInt64, request: PeerRequest)>()
    private var handshakeTimer: Scheduled<Void>?
    private var flushScheduled = false
    private var isClosed = false

    init(
        localNode: NodeID, remoteNode: NodeID, eventLoop: any EventLoop,
        handshakeTimeout: TimeAmount = PeerClient.defaultHandshakeTimeout, secret: ClusterSecret? = nil, logger: Logger
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.secret = secret
        self.localNode = localNode
        self.remoteNode = remoteNode
        self.eventLoop = eventLoop
        var logger = logger
        logger[metadataKey: "peer"] = "\(remoteNode)"
        self.logger = logger
    }

    func send(_ request: PeerRequest, to address: NodeAddress, timeout: TimeAmount) async -> PeerReply {
        let promise = eventLoop.makePromise(of: PeerReply.self)
        if eventLoop.inEventLoop {
            start(request, to: address, timeout: timeout, promise: promise)
        } else {
            eventLoop.execute { self.start(request, to: address, timeout: timeout, promise: promise) }
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            return .failure(PeerFailure(.unavailable, detail: "\(error)"))
        }
    }

    /// Fails everything waiting, closes the channel, and refuses later requests.
    func close() async {
        let channel = eventLoop.submit { () -> (any Channel)? in
            self.isClosed = true
            let channel = self.currentChannel
            self.connectionLost(generation: self.generation, reason: "peer client closed")
            return channel
        }
        try? await channel.get()?.close()
    }

    // MARK: On the event loop

    private var currentChannel: (any Channel)? {
        switch phase {
        case .idle, .connecting: nil
        case .handshaking(let channel), .ready(let channel): channel
        }
    }

    private func start(
        _ request: PeerRequest, to address: NodeAddress, timeout: TimeAmount, promise: EventLoopPromise<PeerReply>
    ) {
        guard !isClosed else {
            promise.succeed(.failure(PeerFailure(.unavailable, detail: "peer client closed")))
            return
        }
        let id = nextRequestID
        nextRequestID &+= 1
        guard
            let timer = try? eventLoop.scheduleCallback(in: timeout, handler: RequestTimeout(connection: self, id: id))
        else {
            promise.succeed(.failure(PeerFailure(.unavailable, detail: "event loop shutting down")))
            return
        }
        pending[id] = Pending(promise: promise, timer: timer)
        switch phase {
        case .ready(let channel):
            channel.write(PeerFrame.request(id: id, request), promise: nil)
            scheduleFlush(channel)
        case .idle:
            queued.append((id, request))
            connect(to: address)
        case .connecting, .handshaking:
            queued.append((id, request))
        }
    }

    private func connect(to address: NodeAddress) {
        generation &+= 1
        let generation = generation
        phase = .connecting
        logger.debug("connecting", metadata: ["address": "\(address)"])
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if let userTimeout = PeerSocketOptions.userTimeout {
            bootstrap = bootstrap.channelOption(userTimeout, value: PeerSocketOptions.userTimeoutMilliseconds)
        }
        let (secret, handshakeTimeout) = (secret, handshakeTimeout)
        bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let secret {
                    try channel.pipeline.syncOperations.addHandler(
                        ClusterAuthInitiatorHandler(secret: secret, purpose: .peer, timeout: handshakeTimeout))
                }
                try channel.pipeline.syncOperations.addHandlers(
                    ByteToMessageHandler(PeerFrameDecoder()),
                    PeerFrameEncoder(),
                    PeerClientChannelHandler(connection: self, generation: generation))
            }
        }
        .connect(host: address.host, port: address.port)
        .whenComplete { result in
            switch result {
            case .success(let channel):
                self.connected(channel, generation: generation)
            case .failure(let error):
                self.connectionLost(generation: generation, reason: "cannot connect to \(address): \(error)")
            }
        }
    }

    private func connected(_ channel: any Channel, generation: UInt64) {
        guard generation == self.generation, case .connecting = phase else {
            channel.close(promise: nil)
            return
        }
        phase = .handshaking(channel)
        channel.writeAndFlush(
            PeerFrame.hello(
                PeerFrame.Hello(
                    minVersion: PeerFrame.protocolVersions.lowerBound,
                    maxVersion: PeerFrame.protocolVersions.upperBound, nodeID: localNode)),
            promise: nil)
        handshakeTimer = eventLoop.scheduleTask(in: handshakeTimeout) {
            guard generation == self.generation, case .handshaking = self.phase else { return }
            self.logger.notice("no helloAck in time; closing")
            self.connectionLost(generation: generation, reason: "\(self.remoteNode) did not answer hello in time")
            channel.close(promise: nil)
        }
    }

    /// A frame from the channel of `generation`.
    func frameReceived(_ frame: PeerFrame, channel: any Channel, generation: UInt64) {
        guard generation == self.generation else { return }
        switch (phase, frame) {
        case (.ready, .reply(let id, let reply)):
            guard let request = pending.removeValue(forKey: id) else {
                logger.debug("reply to a request no longer waiting", metadata: ["request-id": "\(id)"])
                return
            }
            // Cancelling scans the loop's timer queue, but keeps it as short
            // as the requests in flight instead of every request of the last
            // timeout period.
            request.timer.cancel()
            request.promise.succeed(reply)
        case (.handshaking, .helloAck(let ack)):
            helloAcknowledged(ack, channel: channel)
        case (_, .error(let error)):
            logger.notice(
                "peer closed the connection with a protocol error",
                metadata: ["code": "\(error.code)", "error": "\(error.message)"])
            connectionLost(generation: generation, reason: "\(remoteNode) reported \(error.code): \(error.message)")
            channel.close(promise: nil)
        default:
            protocolViolation(
                PeerWireError(.unexpectedFrame, "a client does not accept \(frame.type) frames here"), channel: channel,
                generation: generation)
        }
    }

    /// The server sent bytes that break the protocol.
    func protocolViolation(_ error: PeerWireError, channel: any Channel, generation: UInt64) {
        guard generation == self.generation else { return }
        logger.notice(
            "closing peer connection after a protocol error",
            metadata: ["code": "\(error.code)", "error": "\(error.detail)"])
        connectionLost(generation: generation, reason: "protocol error from \(remoteNode): \(error)")
        channel.writeAndFlush(PeerFrame.error(PeerFrame.ProtocolError(error))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func helloAcknowledged(_ ack: PeerFrame.HelloAck, channel: any Channel) {
        guard PeerFrame.protocolVersions.contains(ack.version) else {
            protocolViolation(
                PeerWireError(.unsupportedVersion, "helloAck chose version \(ack.version)"), channel: channel,
                generation: generation)
            return
        }
        guard ack.nodeID == remoteNode else {
            // A stale address: another node listens there. Fencing would
            // catch it later; refusing here keeps requests off the wrong node.
            logger.notice("wrong node at the peer address", metadata: ["answered": "\(ack.nodeID)"])
            connectionLost(generation: generation, reason: "\(ack.nodeID) answered instead of \(remoteNode)")
            channel.close(promise: nil)
            return
        }
        handshakeTimer?.cancel()
        handshakeTimer = nil
        phase = .ready(channel)
        logger.debug("peer connection ready", metadata: ["version": "\(ack.version)"])
        while let next = queued.popFirst() {
            // A request that timed out while waiting stays unsent.
            guard pending[next.id] != nil else { continue }
            channel.write(PeerFrame.request(id: next.id, next.request), promise: nil)
        }
        channel.flush()
    }

    /// The channel of `generation` is gone (or never came): every request
    /// waiting on it gets `unavailable` now. Their timers fire later and find
    /// nothing (cancelling each would scan the loop's timer queue once per
    /// request).
    func connectionLost(generation: UInt64, reason: String) {
        guard generation == self.generation else { return }
        switch phase {
        case .idle: return
        case .connecting, .handshaking, .ready: break
        }
        self.generation &+= 1
        phase = .idle
        handshakeTimer?.cancel()
        handshakeTimer = nil
        queued.removeAll()
        let failed = pending
        pending = [:]
        if !failed.isEmpty {
            logger.debug("peer connection lost", metadata: ["reason": "\(reason)", "failed": "\(failed.count)"])
        }
        let reply = PeerReply.failure(PeerFailure(.unavailable, detail: reason))
        for request in failed.values { request.promise.succeed(reply) }
    }

    fileprivate func timedOut(id: UInt64) {
        guard let request = pending.removeValue(forKey: id) else { return }
        request.promise.succeed(.failure(PeerFailure(.unavailable, detail: "no reply from \(remoteNode) in time")))
    }

    /// One flush for every request sent in the same event-loop tick.
    private func scheduleFlush(_ channel: any Channel) {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute {
            self.flushScheduled = false
            channel.flush()
        }
    }

    /// Resolves request `id` with `unavailable` when its time is up.
    private struct RequestTimeout: NIOScheduledCallbackHandler, Sendable {
        let connection: PeerClientConnection
        let id: UInt64

        func handleScheduledCallback(eventLoop: some EventLoop) {
            connection.timedOut(id: id)
        }
    }
}

/// The pipeline end of a client channel: hands frames and closure to the
/// ``PeerClientConnection`` tagged with the channel's generation.
final class PeerClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = PeerInbound

    private let connection: PeerClientConnection
    private let generation: UInt64

    init(connection: PeerClientConnection, generation: UInt64) {
        self.connection = connection
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .frame(let frame):
            connection.frameReceived(frame, channel: context.channel, generation: generation)
        case .malformedRequest(let id, _):
            connection.protocolViolation(
                PeerWireError(.unexpectedFrame, "a server sent a request frame (id \(id))"), channel: context.channel,
                generation: generation)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PeerWireError {
            connection.protocolViolation(error, channel: context.channel, generation: generation)
        } else if !(error is ByteToMessageDecoderError) {
            connection.connectionLost(generation: generation, reason: "connection error: \(error)")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.connectionLost(generation: generation, reason: "connection to the peer lost")
        context.fireChannelInactive()
    }
}
