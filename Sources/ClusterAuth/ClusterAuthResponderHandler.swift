import Logging
import NIOCore

/// The accepting side of the cluster handshake in a channel pipeline: first
/// in an accepted connection's pipeline, it answers the handshake and passes
/// nothing on until the initiator has proved the secret. Then it calls
/// `onAccepted` (which may set up what follows, e.g. a tunnel's other end),
/// forwards whatever arrived meanwhile, and leaves the pipeline. A wrong or
/// missing proof, or none within `timeout`, closes the connection and is
/// logged at notice level with the remote address.
public final class ClusterAuthResponderHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// The default bound on the whole exchange: members answer in well under a millisecond.
    public static let defaultTimeout = TimeAmount.seconds(5)

    private var machine: ClusterHandshakeResponder?
    private let purpose: ClusterHandshakePurpose
    private let timeout: TimeAmount
    private let logger: Logger
    private let onAccepted: (any Channel) -> EventLoopFuture<Void>
    private var timer: Scheduled<Void>?
    private var accepted = false
    private var pending: [ByteBuffer] = []

    public init(
        secret: ClusterSecret, purpose: ClusterHandshakePurpose, timeout: TimeAmount = defaultTimeout, logger: Logger,
        onAccepted: @escaping (any Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) {
        self.machine = ClusterHandshakeSide(secret: secret, purpose: purpose).map(ClusterHandshakeResponder.init)
        self.purpose = purpose
        self.timeout = timeout
        self.logger = logger
        self.onAccepted = onAccepted
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        startTimer(context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if accepted {
            pending.append(bytes)
            return
        }
        guard machine != nil else {
            refuse(context, verdict: nil, reason: "no random source for the handshake")
            return
        }
        let action = machine!.receive(bytes.readBytes(length: bytes.readableBytes) ?? [])
        switch action {
        case .wait:
            break
        case .send(let reply):
            context.writeAndFlush(wrapOutbound(context, reply), promise: nil)
        case .refuse(let verdict, let reason):
            refuse(context, verdict: verdict, reason: reason)
        case .accept(let verdict, let leftover):
            accepted = true
            timer?.cancel()
            timer = nil
            if !leftover.isEmpty { pending.append(context.channel.allocator.buffer(bytes: leftover)) }
            context.writeAndFlush(wrapOutbound(context, verdict), promise: nil)
            let channel = context.channel
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let logger = logger
            onAccepted(channel).hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success:
                    channel.pipeline.syncOperations.removeHandler(handler.value, promise: nil)
                case .failure(let error):
                    logger.warning(
                        "authenticated connection could not be set up", metadata: ["remote": "\(Self.remote(channel))", "error": "\(error)"])
                    channel.close(promise: nil)
                }
            }
        }
    }

    public func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let forwarded = pending
        pending = []
        for bytes in forwarded { context.fireChannelRead(wrapInboundOut(bytes)) }
        if !forwarded.isEmpty { context.fireChannelReadComplete() }
        context.leavePipeline(removalToken: removalToken)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if !accepted { return }
        if pending.isEmpty { context.fireChannelReadComplete() }
    }

    private func wrapOutbound(_ context: ChannelHandlerContext, _ bytes: [UInt8]) -> NIOAny {
        NIOAny(context.channel.allocator.buffer(bytes: bytes))
    }

    private func startTimer(_ context: ChannelHandlerContext) {
        guard timer == nil, !accepted else { return }
        let channel = context.channel
        let (logger, purpose, timeout) = (logger, purpose, timeout)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            logger.notice(
                "closing a connection that did not complete the cluster handshake in time",
                metadata: ["remote": "\(Self.remote(channel))", "port": "\(purpose)", "timeout-ms": "\(timeout.nanoseconds / 1_000_000)"])
            channel.close(promise: nil)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, verdict: [UInt8]?, reason: String) {
        timer?.cancel()
        timer = nil
        logger.notice(
            "refused a connection without the cluster's credentials",
            metadata: ["remote": "\(Self.remote(context.channel))", "port": "\(purpose)", "reason": "\(reason)"])
        let channel = context.channel
        if let verdict {
            context.writeAndFlush(wrapOutbound(context, verdict)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    static func remote(_ channel: any Channel) -> String {
        channel.remoteAddress.map { "\($0)" } ?? "?"
    }
}
