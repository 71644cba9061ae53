import NIOCore

/// Stops reading from a connection while its channel is not writable (more
/// than the write-buffer high-water mark queued for the socket) and reads again
/// once it is: a host that sends commands but never reads the responses
/// cannot make the target queue more than the water marks and the commands
/// already admitted (ARCHITECTURE "Trust boundaries").
///
/// It holds back the channel's `read()` (sent on every read burst with
/// `autoRead` on) instead of switching `autoRead` off, so no other handler's
/// reads are lost and none has to know.
final class ReadGate: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A `read()` arrived while the channel was not writable.
    private(set) var readPending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }
}
