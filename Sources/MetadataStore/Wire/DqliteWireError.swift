/// A malformed or unexpected frame from the peer. The connection that saw it
/// is closed; the client treats it like a lost connection.
public struct DqliteWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// The body ended before a field did.
        case truncated
        /// A text field had no terminating zero byte.
        case unterminatedText
        /// A text field was not UTF-8.
        case invalidUTF8
        /// A tuple carried a type code dqlite does not define.
        case unknownValueType(UInt8)
        /// A message type this client does not know.
        case unknownMessageType(UInt8)
        /// A frame bigger than `DqliteFrame.maximumBodyWords`.
        case frameTooLarge(words: UInt32)
        /// A response type that does not answer the request in flight.
        case unexpectedResponse(String)
        /// A value that does not fit its field (e.g. > 255 parameters).
        case valueOutOfRange(String)
    }

    /// The failure kind.
    public var code: Code

    public init(_ code: Code) { self.code = code }

    public var description: String { "dqlite wire error: \(code)" }
}
