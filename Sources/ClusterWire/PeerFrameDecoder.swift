import NIOCore

/// What the frame decoder got from the byte stream.
public enum PeerInbound: Sendable {
    /// A well-formed frame.
    case frame(PeerFrame)
    /// A request frame of unknown kind or with malformed fields. Its length
    /// was valid and all of it was consumed, so the stream goes on: the server
    /// answers `failure(badRequest)` for `id`.
    case malformedRequest(id: UInt64, PeerWireError)
}

/// Splits a byte stream into peer frames. Pure apart from the
/// `ByteToMessageDecoder` glue: ``decode(_:)`` works on any buffer.
public struct PeerFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = PeerInbound

    public init() {}

    /// Decodes one frame from the readable bytes of `buffer`, moving the
    /// reader index past it. Returns nil, with the reader index untouched,
    /// while the frame is incomplete. Throws when the stream cannot go on:
    /// the length is out of bounds (as soon as its 4 bytes are in, before
    /// the body is buffered), the type is unknown (as soon as its byte is
    /// in), or a non-request frame is malformed.
    public func decode(_ buffer: inout ByteBuffer) throws(PeerWireError) -> PeerInbound? {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: UInt32.self) else { return nil }
        guard length >= PeerFrame.headerLength else {
            throw PeerWireError(.malformed, "frame length \(length) < \(PeerFrame.headerLength)")
        }
        guard length <= PeerFrame.maxFrameLength else {
            throw PeerWireError(.oversized, "frame length \(length) > \(PeerFrame.maxFrameLength)")
        }
        let typeIndex = start + PeerFrame.lengthFieldSize
        guard let rawType = buffer.getInteger(at: typeIndex, as: UInt8.self) else { return nil }
        guard let type = PeerFrameType(rawValue: rawType) else {
            throw PeerWireError(.unknownType, "frame type \(rawType)")
        }
        guard var frame = buffer.getSlice(at: typeIndex + 1, length: Int(length) - 1) else { return nil }
        let frameEnd = typeIndex + Int(length)

        let requestID = frame.readInteger(as: UInt64.self) ?? 0  // length >= 9 guarantees it
        let inbound: PeerInbound
        if type == .request {
            do {
                inbound = .frame(try PeerFrame(type: type, requestID: requestID, body: &frame))
            } catch {
                inbound = .malformedRequest(id: requestID, error)
            }
        } else {
            inbound = .frame(try PeerFrame(type: type, requestID: requestID, body: &frame))
        }
        buffer.moveReaderIndex(to: frameEnd)
        return inbound
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let inbound = try decode(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(inbound))
        return .continue
    }

    /// At EOF an incomplete frame is dropped with the connection.
    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }
}

/// Encodes outbound ``PeerFrame``s into one buffer each, sized exactly.
/// Callers check ``PeerFrame/checkEncodable()`` first.
public final class PeerFrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = PeerFrame
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: frame.encodedLength)
        frame.encode(into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
