/// A violation of the peer protocol by the other side: a frame that cannot
/// be decoded, or a frame that is not allowed in the connection's state.
/// The code travels in error frames (type 5); `detail` names the check that
/// failed and is for logs only.
public struct PeerWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong. The raw values are the error frame's code byte.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// A field is truncated, out of range, or followed by stray bytes.
        public static let malformed = Code(rawValue: 1)
        /// The frame length exceeds ``PeerFrame/maxFrameLength`` (or a count exceeds its bound).
        public static let oversized = Code(rawValue: 2)
        /// The frame type is not in the table.
        public static let unknownType = Code(rawValue: 3)
        /// The request kind is not in the table.
        public static let unknownKind = Code(rawValue: 4)
        /// The two nodes share no protocol version.
        public static let unsupportedVersion = Code(rawValue: 5)
        /// A well-formed frame the connection's state does not allow (hello
        /// not first, a second hello, a reply sent to a server, a request id
        /// already in flight).
        public static let unexpectedFrame = Code(rawValue: 6)

        public var description: String {
            switch self {
            case .malformed: "malformed"
            case .oversized: "oversized"
            case .unknownType: "unknownType"
            case .unknownKind: "unknownKind"
            case .unsupportedVersion: "unsupportedVersion"
            case .unexpectedFrame: "unexpectedFrame"
            default: "code \(rawValue)"
            }
        }
    }

    /// The kind of violation.
    public var code: Code
    /// Which check failed, for logs.
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "PeerWireError.\(code): \(detail)" }
}
