import NIOCore

/// One dqlite message: an 8-byte header (body size in words: uint32 LE, type:
/// uint8, schema revision: uint8, 2 unused bytes) and a body that is a whole
/// number of words (dqlite doc/protocol.md "Definitions").
public struct DqliteFrame: Hashable, Sendable {
    /// The message type code (request or response table).
    public var type: UInt8
    /// The schema revision of the body.
    public var schema: UInt8
    /// The body, a multiple of 8 bytes.
    public var body: ByteBuffer

    /// The header's length in bytes.
    public static let headerLength = 8
    /// The largest body this client accepts (64 MiB); dqlite never sends a
    /// metadata result anywhere near it, so a larger header is a broken peer.
    public static let maximumBodyWords: UInt32 = (64 << 20) / 8
    /// Protocol version word sent once after connecting (DQLITE_PROTOCOL_VERSION).
    public static let protocolVersion: UInt64 = 1

    public init(type: UInt8, schema: UInt8 = 0, body: ByteBuffer) {
        self.type = type
        self.schema = schema
        self.body = body
    }

    /// Writes header and body; pads the body with zeros if it is not whole words.
    public func encode(into out: inout ByteBuffer) {
        var body = body
        let pad = ByteBuffer.dqlitePadding(body.readableBytes)
        if pad > 0 { body.writeRepeatingByte(0, count: pad) }
        out.writeInteger(UInt32(body.readableBytes / 8), endianness: .little)
        out.writeInteger(type)
        out.writeInteger(schema)
        out.writeInteger(UInt16(0))
        out.writeImmutableBuffer(body)
    }

    /// Reads one whole frame, or returns nil and leaves the reader index alone
    /// when `buffer` holds only part of one (ByteToMessageDecoder contract).
    public static func decode(from buffer: inout ByteBuffer) throws(DqliteWireError) -> DqliteFrame? {
        guard buffer.readableBytes >= headerLength,
            let words = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self),
            let schema = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt8.self)
        else { return nil }
        guard words <= maximumBodyWords else { throw DqliteWireError(.frameTooLarge(words: words)) }
        let bodyLength = Int(words) * 8
        guard buffer.readableBytes >= headerLength + bodyLength else { return nil }
        buffer.moveReaderIndex(forwardBy: headerLength)
        guard let body = buffer.readSlice(length: bodyLength) else { return nil }
        return DqliteFrame(type: type, schema: schema, body: body)
    }
}

/// ByteToMessageDecoder turning the byte stream into `DqliteFrame`s.
struct DqliteFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = DqliteFrame

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try DqliteFrame.decode(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
