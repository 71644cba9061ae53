import Logging
import NIOCore

/// The connecting side of the cluster handshake in a channel pipeline:
/// first in a client connection's pipeline, it sends the hello as soon as
/// the connection is up and holds every write of the handlers after it
/// until the other side has proved the secret and accepted this node's
/// proof. Then it sends what it held, passes on what came with the verdict,
/// and leaves the pipeline. On a refusal or timeout the held writes fail
/// with ``ClusterAuthError``, the error is fired down the pipeline, and the
/// connection closes. ``authenticated`` tells a caller which it was.
public final class ClusterAuthInitiatorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var machine: ClusterHandshakeInitiator?
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var promise: EventLoopPromise<Void>?
    private var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var heldFlush = false
    private var leftover: ByteBuffer?
    /// Set once the handshake ended, either way.
    private var finished = false
    private var failure: ClusterAuthError?

    public init(secret: ClusterSecret, purpose: ClusterHandshakePurpose, timeout: TimeAmount = ClusterAuthResponderHandler.defaultTimeout) {
        self.machine = ClusterHandshakeSide(secret: secret, purpose: purpose).map(ClusterHandshakeInitiator.init)
        self.timeout = timeout
    }

    /// Succeeds once the other side accepted; fails with ``ClusterAuthError``
    /// (or the channel's error) otherwise. Valid once the handler is in a pipeline.
    public var authenticated: EventLoopFuture<Void> {
        promise!.futureResult
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        promise = context.eventLoop.makePromise(of: Void.self)
        if context.channel.isActive { begin(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if !finished { fail(context, ClusterAuthError("the connection closed during the cluster handshake"), close: false) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if !finished { fail(context, ClusterAuthError("the connection closed during the cluster handshake"), close: false) }
        context.fireChannelInactive()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let failure {
            promise?.fail(failure)
        } else if finished && held.isEmpty {
            context.write(data, promise: promise)
        } else {
            held.append((unwrapOutboundIn(data), promise))
        }
    }

    public func flush(context: ChannelHandlerContext) {
        if finished && held.isEmpty { context.flush() } else { heldFlush = true }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if finished {
            context.fireChannelRead(data)
            return
        }
        guard machine != nil else { return }
        switch machine!.receive(bytes.readBytes(length: bytes.readableBytes) ?? []) {
        case .wait:
            break
        case .send(let proof):
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: proof)), promise: nil)
        case .refused(let reason):
            fail(context, ClusterAuthError(reason, isMismatch: true), close: true)
        case .accepted(let rest):
            finished = true
            timer?.cancel()
            timer = nil
            if !rest.isEmpty { leftover = context.channel.allocator.buffer(bytes: rest) }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            promise?.succeed()
        }
    }

    public func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if finished {
            let writes = held
            held = []
            for (bytes, promise) in writes { context.write(NIOAny(bytes), promise: promise) }
            if heldFlush || !writes.isEmpty { context.flush() }
            heldFlush = false
            if let leftover {
                self.leftover = nil
                context.fireChannelRead(NIOAny(leftover))
                context.fireChannelReadComplete()
            }
        }
        context.leavePipeline(removalToken: removalToken)
    }

    private func begin(_ context: ChannelHandlerContext) {
        guard timer == nil, !finished else { return }
        guard let machine else {
            fail(context, ClusterAuthError("no random source for the handshake"), close: true)
            return
        }
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: machine.hello)), promise: nil)
        let timeout = timeout
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            guard !handler.finished else { return }
            handler.fail(
                context, ClusterAuthError("no answer to the cluster handshake within \(timeout.nanoseconds / 1_000_000) ms"),
                close: true)
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ error: ClusterAuthError, close: Bool) {
        guard !finished else { return }
        finished = true
        failure = error
        timer?.cancel()
        timer = nil
        let writes = held
        held = []
        for (_, promise) in writes { promise?.fail(error) }
        promise?.fail(error)
        if close {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}
