import BlockStorage
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// A NIO event loop as a ``CompletionPoller``: a watched descriptor (a block
/// device's completion eventfd) becomes a pipe channel on the loop, so the
/// loop's selector wakes for it and the device reaps its completions on the
/// thread that runs the connection and sends the response (an iSCSI
/// connection's or a peer connection's).
public final class EventLoopCompletionPoller: CompletionPoller {
    let eventLoop: any EventLoop

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Installs a poller for `eventLoop` on its thread, unless the thread has
    /// one; call it on the loop. A loop NIO cannot register a descriptor
    /// with (an `EmbeddedEventLoop`) gets none.
    public static func installIfNeeded(on eventLoop: any EventLoop) {
        eventLoop.preconditionInEventLoop()
        guard CompletionPollers.current == nil, NIOPipeBootstrap(validatingGroup: eventLoop) != nil else { return }
        CompletionPollers.install(EventLoopCompletionPoller(eventLoop: eventLoop))
    }

    public func watch(
        _ descriptor: Int32, onReadable: @escaping @Sendable () -> Void, onClosed: @escaping @Sendable () -> Void
    ) -> Bool {
        guard let bootstrap = NIOPipeBootstrap(validatingGroup: eventLoop) else { return false }
        bootstrap
            .channelOption(.autoRead, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DescriptorReadableHandler(onReadable: onReadable, onClosed: onClosed))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .whenFailure { _ in
                // A failed registration leaves the descriptor with the caller, which is this poller.
                Glibc.close(descriptor)
                onClosed()
            }
        return true
    }

    public func afterQueuedWork(_ body: @escaping @Sendable () -> Void) {
        eventLoop.execute(body)
    }
}

/// Turns reads from a watched descriptor (an eventfd's counter: the read
/// resets it) into readable callbacks.
private final class DescriptorReadableHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let onReadable: @Sendable () -> Void
    private let onClosed: @Sendable () -> Void
    private var closed = false

    init(onReadable: @escaping @Sendable () -> Void, onClosed: @escaping @Sendable () -> Void) {
        self.onReadable = onReadable
        self.onClosed = onClosed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onReadable()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func stop() {
        guard !closed else { return }
        closed = true
        onClosed()
    }
}
