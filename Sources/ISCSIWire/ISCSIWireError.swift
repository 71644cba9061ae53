/// A framing error that leaves the byte stream unusable: the connection
/// must be closed (RFC 7143 §7.8 / §11.2). PDUs that can be skipped are
/// reported as `ISCSIInbound.reject` instead.
public struct ISCSIWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The header digest did not match the BHS and AHS (RFC 7143 §7.8).
        public static let headerDigestMismatch = Code("headerDigestMismatch")
        /// DataSegmentLength exceeds the negotiated MaxRecvDataSegmentLength
        /// (RFC 7143 §11.2.1.5, §13.12).
        public static let dataSegmentTooLong = Code("dataSegmentTooLong")
    }

    /// The kind of error.
    public var code: Code
    /// Diagnostics for logs; not part of equality of `code`.
    public var detail: String

    public init(code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "ISCSIWireError.\(code): \(detail)" }
}

import NIOCore

/// What the frame decoder got from the byte stream.
public enum ISCSIInbound: Sendable, Equatable {
    /// A well-formed PDU.
    case pdu(ISCSIPDU)
    /// A PDU that must be answered with a Reject PDU carrying `reason` and
    /// the rejected PDU's `basicHeaderSegment` (48 bytes) as its data
    /// segment (RFC 7143 §11.17); the connection goes on. Reasons: unknown
    /// opcode (`protocolError`, or `commandNotSupported` for vendor-specific
    /// opcodes), data digest error (`dataDigestError`), invalid field
    /// (`invalidPDUField`).
    case reject(reason: UInt8, basicHeaderSegment: ByteBuffer)
}
