import NIOCore

/// The NIO shell around `ISCSIFrameDecoder` and `ISCSIFrameEncoder`: bytes
/// in, `ISCSIInbound` out; `ISCSIPDU` in, bytes out (header, data segment
/// and trailer as separate writes, so Data-In payloads are never copied).
///
/// A fatal framing error (`ISCSIWireError`) is fired with `errorCaught`,
/// further input is dropped and the channel is closed.
///
/// The connection handler calls `enableDigests` and sets
/// `maxRecvDataSegmentLength` on the event loop when login completes,
/// *after* writing the final Login Response (RFC 7143 §13.1: digests start
/// with the first full-feature PDU). Bytes already buffered are decoded with
/// the new settings, because each PDU is decoded only after the previous one
/// has been passed on.
public final class ISCSIFrameHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ISCSIInbound
    public typealias OutboundIn = ISCSIPDU
    public typealias OutboundOut = ByteBuffer

    private var decoder: ISCSIFrameDecoder
    private var encoder: ISCSIFrameEncoder
    private var cumulation: ByteBuffer?
    private var failed = false

    /// The largest DataSegmentLength accepted from the peer (RFC 7143 §13.12).
    public var maxRecvDataSegmentLength: Int {
        get { decoder.maxRecvDataSegmentLength }
        set { decoder.maxRecvDataSegmentLength = newValue }
    }

    public init(maxRecvDataSegmentLength: Int = ISCSIFrameDecoder.defaultMaxRecvDataSegmentLength) {
        self.decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: maxRecvDataSegmentLength)
        self.encoder = ISCSIFrameEncoder()
    }

    /// Switches CRC32C header and data digests on (or off) in both
    /// directions, from the next PDU on.
    public func enableDigests(header: Bool, data: Bool) {
        decoder.headerDigest = header
        decoder.dataDigest = data
        encoder.headerDigest = header
        encoder.dataDigest = data
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var previous = cumulation {
            cumulation = nil
            previous.writeBuffer(&incoming)
            buffer = previous
        } else {
            buffer = incoming
        }
        while !failed {
            let inbound: ISCSIInbound?
            do {
                inbound = try decoder.decode(&buffer)
            } catch {
                failed = true
                context.fireErrorCaught(error)
                context.close(promise: nil)
                return
            }
            guard let inbound else { break }
            context.fireChannelRead(wrapInboundOut(inbound))
        }
        if !failed && buffer.readableBytes > 0 {
            if buffer.readerIndex > 0 { buffer.discardReadBytes() }
            cumulation = buffer
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let pdu = unwrapOutboundIn(data)
        let frame = encoder.encodeFrame(pdu, allocator: context.channel.allocator)
        switch (frame.data, frame.trailer) {
        case (nil, nil):
            context.write(wrapOutboundOut(frame.header), promise: promise)
        case (let data?, nil):
            context.write(wrapOutboundOut(frame.header), promise: nil)
            context.write(wrapOutboundOut(data), promise: promise)
        case (nil, let trailer?):
            context.write(wrapOutboundOut(frame.header), promise: nil)
            context.write(wrapOutboundOut(trailer), promise: promise)
        case (let data?, let trailer?):
            context.write(wrapOutboundOut(frame.header), promise: nil)
            context.write(wrapOutboundOut(data), promise: nil)
            context.write(wrapOutboundOut(trailer), promise: promise)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cumulation = nil
    }
}

@available(*, unavailable)
extension ISCSIFrameHandler: Sendable {}
