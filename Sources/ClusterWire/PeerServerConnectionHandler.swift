import ClusterModel
import EventLoopExecution
import Logging
import NIOCore

/// The channel handler of one server-side peer connection: feeds decoded
/// frames to ``PeerServerConnectionStateMachine`` and carries out its
/// actions. Requests run concurrently, one `Task` each, on the connection's
/// event loop (a task executor preference; block-device completions are
/// reaped there too), so a request costs no thread hop of its own; replies
/// are written as they complete, and flushed once per event-loop tick.
final class PeerServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = PeerInbound
    typealias OutboundIn = PeerFrame
    typealias OutboundOut = PeerFrame

    private var machine: PeerServerConnectionStateMachine
    private let requestHandler: any PeerRequestHandler
    private var logger: Logger
    private var helloTimer: Scheduled<Void>?
    /// How long a new connection may take to send its hello.
    private let helloTimeout: TimeAmount
    private var flushScheduled = false
    /// Runs this connection's request tasks on its event loop (set once the handler is added).
    private var loopExecutor: EventLoopTaskExecutor?

    init(
        localNodeID: NodeID, requestHandler: any PeerRequestHandler, maxInFlight: Int, helloTimeout: TimeAmount,
        logger: Logger
    ) {
        self.helloTimeout = helloTimeout
        self.machine = PeerServerConnectionStateMachine(localNodeID: localNodeID, maxInFlight: maxInFlight)
        self.requestHandler = requestHandler
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        EventLoopCompletionPoller.installIfNeeded(on: context.eventLoop)
        loopExecutor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        logger[metadataKey: "peer-address"] = "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"
        if context.channel.isActive { armHelloTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armHelloTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.channelClosed()
        helloTimer?.cancel()
        helloTimer = nil
        logger.debug("peer connection closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let action = machine.frameReceived(unwrapInboundIn(data))
        if case .serving(let peer, let version) = machine.state, helloTimer != nil {
            helloTimer?.cancel()
            helloTimer = nil
            logger[metadataKey: "peer"] = "\(peer)"
            logger.debug("peer connection ready", metadata: ["version": "\(version)"])
        }
        run(action, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PeerWireError {
            run(machine.decodeFailed(error), context: context)
        } else if error is ByteToMessageDecoderError {
            // Bytes after a decoding error: the connection is closing already.
        } else {
            logger.debug("peer connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if machine.writabilityChanged(context.channel.isWritable) { context.read() }
        context.fireChannelWritabilityChanged()
    }

    private func run(_ action: PeerServerConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .send(let frame):
            context.write(wrapOutboundOut(frame), promise: nil)
            scheduleFlush(context: context)
        case .dispatch(let id, let request, let peer):
            dispatch(id: id, request, from: peer, context: context)
        case .sendErrorAndClose(let error):
            logger.notice(
                "closing peer connection after a protocol error",
                metadata: ["code": "\(error.code)", "error": "\(error.message)"])
            context.writeAndFlush(wrapOutboundOut(.error(error))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .close:
            logger.notice("peer sent an error frame; closing")
            context.close(promise: nil)
        }
    }

    private func dispatch(id: UInt64, _ request: PeerRequest, from peer: NodeID, context: ChannelHandlerContext) {
        let requestHandler = requestHandler
        let eventLoop = context.eventLoop
        let target = NIOLoopBound((handler: self, context: context), eventLoop: eventLoop)
        Task(executorPreference: loopExecutor) {
            let reply = await requestHandler.handle(request, from: peer)
            let complete: @Sendable () -> Void = {
                target.value.handler.requestCompleted(id: id, reply: reply, context: target.value.context)
            }
            // The loop already, unless a device resumed the task elsewhere.
            if eventLoop.inEventLoop { complete() } else { eventLoop.execute(complete) }
        }
    }

    private func requestCompleted(id: UInt64, reply: PeerReply, context: ChannelHandlerContext) {
        let completion = machine.requestCompleted(id: id, reply: reply)
        if let frame = completion.reply {
            context.write(wrapOutboundOut(frame), promise: nil)
            scheduleFlush(context: context)
        }
        if let next = completion.dispatch {
            dispatch(id: next.id, next.request, from: next.from, context: context)
        }
        if completion.resumeReading { context.read() }
    }

    /// One flush for every reply that completes in the same event-loop tick.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let target = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            target.value.handler.flushScheduled = false
            target.value.context.flush()
        }
    }

    private func armHelloTimer(context: ChannelHandlerContext) {
        guard helloTimer == nil, machine.state == .awaitingHello else { return }
        let target = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        helloTimer = context.eventLoop.scheduleTask(in: helloTimeout) {
            let (handler, context) = target.value
            handler.helloTimer = nil
            handler.run(handler.machine.helloTimedOut(), context: context)
        }
    }
}
