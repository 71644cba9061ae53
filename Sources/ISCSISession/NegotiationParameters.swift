/// The operational parameters in force once login completes (RFC 7143 §13).
/// Defaults are the RFC defaults, i.e. what applies to a key nobody negotiated.
public struct NegotiatedParameters: Sendable, Equatable {
    /// HeaderDigest=CRC32C (§13.1).
    public var headerDigest: Bool = false
    /// DataDigest=CRC32C (§13.1).
    public var dataDigest: Bool = false
    /// MaxConnections (§13.2).
    public var maxConnections: UInt32 = 1
    /// InitialR2T (§13.10).
    public var initialR2T: Bool = true
    /// ImmediateData (§13.11).
    public var immediateData: Bool = true
    /// The initiator's MaxRecvDataSegmentLength: the most the target may send in one PDU (§13.12).
    public var initiatorMaxRecvDataSegmentLength: UInt32 = 8192
    /// The target's MaxRecvDataSegmentLength: the most the target accepts in one PDU (§13.12).
    public var targetMaxRecvDataSegmentLength: UInt32 = 8192
    /// MaxBurstLength (§13.13).
    public var maxBurstLength: UInt32 = 262_144
    /// FirstBurstLength (§13.14), never above maxBurstLength.
    public var firstBurstLength: UInt32 = 65536
    /// DefaultTime2Wait in seconds (§13.15).
    public var defaultTime2Wait: UInt32 = 2
    /// DefaultTime2Retain in seconds (§13.16).
    public var defaultTime2Retain: UInt32 = 20
    /// MaxOutstandingR2T (§13.17).
    public var maxOutstandingR2T: UInt32 = 1
    /// DataPDUInOrder (§13.18).
    public var dataPDUInOrder: Bool = true
    /// DataSequenceInOrder (§13.19).
    public var dataSequenceInOrder: Bool = true
    /// ErrorRecoveryLevel (§13.20); this target supports 0 only.
    public var errorRecoveryLevel: UInt8 = 0

    /// The RFC 7143 defaults.
    public init() {}
}

/// A Login Response status (RFC 7143 §11.13.5): Status-Class and Status-Detail.
public struct LoginStatus: Sendable, Equatable, CustomStringConvertible {
    /// Status-Class: 0 success, 1 redirection, 2 initiator error, 3 target error.
    public var statusClass: UInt8
    /// Status-Detail within the class.
    public var statusDetail: UInt8

    /// Creates a status.
    public init(statusClass: UInt8, statusDetail: UInt8) {
        self.statusClass = statusClass
        self.statusDetail = statusDetail
    }

    /// 0x0000 Success.
    public static let success = LoginStatus(statusClass: 0, statusDetail: 0)
    /// 0x0200 Initiator error (miscellaneous), e.g. a protocol violation.
    public static let initiatorError = LoginStatus(statusClass: 2, statusDetail: 0x00)
    /// 0x0201 Authentication failure.
    public static let authenticationFailure = LoginStatus(statusClass: 2, statusDetail: 0x01)
    /// 0x0202 Authorization failure: the initiator may not access this target.
    public static let authorizationFailure = LoginStatus(statusClass: 2, statusDetail: 0x02)
    /// 0x0203 Not found: no such target.
    public static let notFound = LoginStatus(statusClass: 2, statusDetail: 0x03)
    /// 0x0204 Target removed.
    public static let targetRemoved = LoginStatus(statusClass: 2, statusDetail: 0x04)
    /// 0x0205 Unsupported version.
    public static let unsupportedVersion = LoginStatus(statusClass: 2, statusDetail: 0x05)
    /// 0x0206 Too many connections.
    public static let tooManyConnections = LoginStatus(statusClass: 2, statusDetail: 0x06)
    /// 0x0207 Missing parameter (e.g. no InitiatorName or TargetName).
    public static let missingParameter = LoginStatus(statusClass: 2, statusDetail: 0x07)
    /// 0x0208 Can't include in session.
    public static let cannotIncludeInSession = LoginStatus(statusClass: 2, statusDetail: 0x08)
    /// 0x0209 Session type not supported.
    public static let sessionTypeNotSupported = LoginStatus(statusClass: 2, statusDetail: 0x09)
    /// 0x020a Session does not exist (TSIH unknown when adding a connection).
    public static let sessionDoesNotExist = LoginStatus(statusClass: 2, statusDetail: 0x0a)
    /// 0x020b Invalid request during login.
    public static let invalidDuringLogin = LoginStatus(statusClass: 2, statusDetail: 0x0b)
    /// 0x0300 Target error (miscellaneous).
    public static let targetError = LoginStatus(statusClass: 3, statusDetail: 0x00)
    /// 0x0301 Service unavailable.
    public static let serviceUnavailable = LoginStatus(statusClass: 3, statusDetail: 0x01)
    /// 0x0302 Out of resources.
    public static let outOfResources = LoginStatus(statusClass: 3, statusDetail: 0x02)

    /// `0xCCDD`.
    public var description: String {
        let value = UInt16(statusClass) << 8 | UInt16(statusDetail)
        let hex = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
