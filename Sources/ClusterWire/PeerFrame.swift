import BlockStorage
import ClusterModel
import NIOCore

/// One frame of the peer protocol (node to node, over TCP). All integers
/// are big-endian:
///
///     frame := UInt32 length L (bytes after this field) | UInt8 type | UInt64 requestID | body
///
/// `L = 9 + body length`. A connection starts with ``Hello`` from the
/// client and ``HelloAck`` from the server; then the client sends requests
/// and the server answers each with a reply carrying the request's id, in
/// any order. Either side may send a ``ProtocolError`` and close.
public enum PeerFrame: Sendable {
    /// Type 1, client → server, first frame of a connection.
    case hello(Hello)
    /// Type 2, server → client, the answer to ``hello(_:)``.
    case helloAck(HelloAck)
    /// Type 3, client → server.
    case request(id: UInt64, PeerRequest)
    /// Type 4, server → client: the answer to the request with the same id.
    case reply(id: UInt64, PeerReply)
    /// Type 5, either way: a protocol violation; the sender closes after it.
    case error(ProtocolError)

    /// `"TSRW" | UInt16 minVersion | UInt16 maxVersion | UInt64 nodeID`, request id 0.
    public struct Hello: Hashable, Sendable {
        /// The ASCII bytes "TSRW" that open every hello body.
        static let magic: UInt32 = 0x5453_5257
        static let bodyLength = 16

        public var minVersion: UInt16
        public var maxVersion: UInt16
        /// The client's node.
        public var nodeID: NodeID

        public init(minVersion: UInt16, maxVersion: UInt16, nodeID: NodeID) {
            self.minVersion = minVersion
            self.maxVersion = maxVersion
            self.nodeID = nodeID
        }
    }

    /// `UInt16 version | UInt64 nodeID`, request id 0.
    public struct HelloAck: Hashable, Sendable {
        static let bodyLength = 10

        /// The highest version both sides speak; it governs the connection.
        public var version: UInt16
        /// The server's node.
        public var nodeID: NodeID

        public init(version: UInt16, nodeID: NodeID) {
            self.version = version
            self.nodeID = nodeID
        }
    }

    /// `UInt8 code | UInt16 n | n bytes UTF-8 message`. The request id is
    /// the offending request's when there is one, else 0.
    public struct ProtocolError: Hashable, Sendable {
        public var requestID: UInt64
        public var code: PeerWireError.Code
        /// For logs; at most ``PeerFrame/maxTextLength`` bytes go on the wire.
        public var message: String

        public init(requestID: UInt64 = 0, code: PeerWireError.Code, message: String) {
            self.requestID = requestID
            self.code = code
            self.message = message
        }

        public init(_ error: PeerWireError, requestID: UInt64 = 0) {
            self.init(requestID: requestID, code: error.code, message: error.detail)
        }
    }
}

/// The frame types (the byte after the length).
enum PeerFrameType: UInt8, CaseIterable {
    case hello = 1
    case helloAck = 2
    case request = 3
    case reply = 4
    case error = 5
}

extension PeerFrame {
    /// The protocol versions this build speaks.
    public static let protocolVersions: ClosedRange<UInt16> = 1...1

    /// Size of the length field that precedes every frame.
    static let lengthFieldSize = 4
    /// Type and request id: the smallest possible L.
    static let headerLength = 9
    /// The largest L accepted: the LUN's maximum transfer (8 MiB,
    /// `LogicalUnitConfiguration.maximumTransferBytes`, advertised in the
    /// Block Limits VPD page) plus 4 KiB for the frame and request fields.
    /// Checked as soon as the length field is in, before the body is buffered.
    public static let maxFrameLength = (8 << 20) + 4096
    /// The most extents one allocation reply carries (17 bytes each, so
    /// about 1.1 MB): GET LBA STATUS may return fewer descriptors than the
    /// range has (SBC-4 §5.8), so a larger answer is cut by the handler.
    public static let maxExtents = 65536
    /// The longest error message or failure detail, in UTF-8 bytes.
    public static let maxTextLength = 1024

    var type: PeerFrameType {
        switch self {
        case .hello: .hello
        case .helloAck: .helloAck
        case .request: .request
        case .reply: .reply
        case .error: .error
        }
    }

    /// The frame's request id (0 for hello and helloAck).
    public var requestID: UInt64 {
        switch self {
        case .hello, .helloAck: 0
        case .request(let id, _), .reply(let id, _): id
        case .error(let error): error.requestID
        }
    }

    /// L: the bytes after the length field.
    var frameLength: Int {
        let body =
            switch self {
            case .hello: Hello.bodyLength
            case .helloAck: HelloAck.bodyLength
            case .request(_, let request): request.wireBodyLength
            case .reply(_, let reply): reply.wireBodyLength
            case .error(let error): 1 + 2 + Self.encodedTextLength(error.message)
            }
        return Self.headerLength + body
    }

    /// The whole encoded frame, length field included.
    public var encodedLength: Int { Self.lengthFieldSize + frameLength }

    /// Throws when the frame cannot go on the wire because the peer would
    /// reject it: too long, too many extents, or a write whose `offset`
    /// lies outside its buffer. ``encode(into:)`` requires this to pass.
    public func checkEncodable() throws(PeerWireError) {
        switch self {
        case .request(_, .write(let write)), .request(_, .replicate(let write)),
            .request(_, .compareAndWrite(let write)):
            guard write.offset >= 0, write.offset <= write.data.count else {
                throw PeerWireError(
                    .malformed, "write offset \(write.offset) outside a \(write.data.count)-byte buffer")
            }
        case .reply(_, .extents(let extents)):
            guard extents.count <= Self.maxExtents else {
                throw PeerWireError(.oversized, "\(extents.count) extents > \(Self.maxExtents)")
            }
        default:
            break
        }
        guard frameLength <= Self.maxFrameLength else {
            throw PeerWireError(.oversized, "frame length \(frameLength) > \(Self.maxFrameLength)")
        }
    }

    /// Appends the frame; the one copy of a payload is from its `IOBuffer`
    /// into `buffer`. Requires ``checkEncodable()`` to pass.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: encodedLength)
        buffer.writeInteger(UInt32(frameLength))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(requestID)
        switch self {
        case .hello(let hello):
            buffer.writeInteger(Hello.magic)
            buffer.writeInteger(hello.minVersion)
            buffer.writeInteger(hello.maxVersion)
            buffer.writeInteger(hello.nodeID.rawValue)
        case .helloAck(let ack):
            buffer.writeInteger(ack.version)
            buffer.writeInteger(ack.nodeID.rawValue)
        case .request(_, let request):
            request.encodeBody(into: &buffer)
        case .reply(_, let reply):
            reply.encodeBody(into: &buffer)
        case .error(let error):
            buffer.writeInteger(error.code.rawValue)
            buffer.writePeerText(error.message)
        }
    }

    /// Decodes the body of a frame whose type and request id were read;
    /// `body` holds exactly the frame's remaining bytes, and every one of
    /// them must belong to a field.
    init(type: PeerFrameType, requestID: UInt64, body: inout ByteBuffer) throws(PeerWireError) {
        switch type {
        case .hello:
            guard requestID == 0 else { throw PeerWireError(.malformed, "hello with request id \(requestID)") }
            guard try body.readPeerField(UInt32.self, "hello magic") == Hello.magic else {
                throw PeerWireError(.malformed, "hello magic is not TSRW")
            }
            let minVersion = try body.readPeerField(UInt16.self, "hello minVersion")
            let maxVersion = try body.readPeerField(UInt16.self, "hello maxVersion")
            guard minVersion <= maxVersion else {
                throw PeerWireError(.malformed, "hello minVersion \(minVersion) > maxVersion \(maxVersion)")
            }
            let nodeID = NodeID(try body.readPeerField(UInt64.self, "hello nodeID"))
            self = .hello(Hello(minVersion: minVersion, maxVersion: maxVersion, nodeID: nodeID))
        case .helloAck:
            guard requestID == 0 else { throw PeerWireError(.malformed, "helloAck with request id \(requestID)") }
            let version = try body.readPeerField(UInt16.self, "helloAck version")
            let nodeID = NodeID(try body.readPeerField(UInt64.self, "helloAck nodeID"))
            self = .helloAck(HelloAck(version: version, nodeID: nodeID))
        case .request:
            self = .request(id: requestID, try PeerRequest(decodingBody: &body))
        case .reply:
            self = .reply(id: requestID, try PeerReply(decodingBody: &body))
        case .error:
            let code = PeerWireError.Code(rawValue: try body.readPeerField(UInt8.self, "error code"))
            let message = try body.readPeerText("error message")
            self = .error(ProtocolError(requestID: requestID, code: code, message: message))
        }
        guard body.readableBytes == 0 else {
            throw PeerWireError(.malformed, "\(body.readableBytes) stray bytes after a \(type) frame's fields")
        }
    }

    /// The UTF-8 bytes of `text` that go on the wire: all of them, or the
    /// longest prefix of at most ``maxTextLength`` that ends on a scalar.
    static func encodedTextLength(_ text: String) -> Int {
        let utf8 = text.utf8
        guard utf8.count > maxTextLength else { return utf8.count }
        var cut = maxTextLength
        let start = utf8.startIndex
        // UTF-8 continuation bytes are 0b10xxxxxx: back up to a scalar's first byte.
        while cut > 0, utf8[utf8.index(start, offsetBy: cut)] & 0xC0 == 0x80 { cut -= 1 }
        return cut
    }
}
