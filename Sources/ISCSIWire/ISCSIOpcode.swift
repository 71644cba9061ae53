/// The opcode in the low six bits of BHS byte 0 (RFC 7143 §11.2.1.2).
/// Initiator opcodes are 0x00...0x1f, target opcodes 0x20...0x3f.
public enum ISCSIOpcode: UInt8, Sendable, Hashable, CaseIterable {
    /// NOP-Out (RFC 7143 §11.18).
    case nopOut = 0x00
    /// SCSI Command (RFC 7143 §11.3).
    case scsiCommand = 0x01
    /// SCSI Task Management Function Request (RFC 7143 §11.5).
    case taskManagementRequest = 0x02
    /// Login Request (RFC 7143 §11.12).
    case loginRequest = 0x03
    /// Text Request (RFC 7143 §11.10).
    case textRequest = 0x04
    /// SCSI Data-Out (RFC 7143 §11.7).
    case dataOut = 0x05
    /// Logout Request (RFC 7143 §11.14).
    case logoutRequest = 0x06
    /// SNACK Request (RFC 7143 §11.16).
    case snackRequest = 0x10
    /// NOP-In (RFC 7143 §11.19).
    case nopIn = 0x20
    /// SCSI Response (RFC 7143 §11.4).
    case scsiResponse = 0x21
    /// SCSI Task Management Function Response (RFC 7143 §11.6).
    case taskManagementResponse = 0x22
    /// Login Response (RFC 7143 §11.13).
    case loginResponse = 0x23
    /// Text Response (RFC 7143 §11.11).
    case textResponse = 0x24
    /// SCSI Data-In (RFC 7143 §11.7).
    case dataIn = 0x25
    /// Logout Response (RFC 7143 §11.15).
    case logoutResponse = 0x26
    /// Ready To Transfer (RFC 7143 §11.8).
    case r2t = 0x31
    /// Asynchronous Message (RFC 7143 §11.9).
    case asyncMessage = 0x32
    /// Reject (RFC 7143 §11.17).
    case reject = 0x3f

    /// True for PDUs an initiator sends (opcodes 0x00...0x1f).
    public var isInitiatorOpcode: Bool { rawValue < 0x20 }
}

/// Reason codes of a Reject PDU (RFC 7143 §11.17.1).
public enum RejectReason {
    /// Data (payload) digest error; the original PDU may be resent.
    public static let dataDigestError: UInt8 = 0x02
    /// SNACK Reject; the original PDU may be resent.
    public static let snackReject: UInt8 = 0x03
    /// Protocol error (e.g., SNACK Request for a status that was already acknowledged).
    public static let protocolError: UInt8 = 0x04
    /// Command not supported.
    public static let commandNotSupported: UInt8 = 0x05
    /// Immediate command reject: too many immediate commands.
    public static let immediateCommandReject: UInt8 = 0x06
    /// Task in progress.
    public static let taskInProgress: UInt8 = 0x07
    /// Invalid data ack.
    public static let invalidDataAck: UInt8 = 0x08
    /// Invalid PDU field.
    public static let invalidPDUField: UInt8 = 0x09
    /// Long operation reject: cannot generate Target Transfer Tag, out of resources.
    public static let longOperationReject: UInt8 = 0x0a
    /// Waiting for Logout.
    public static let waitingForLogout: UInt8 = 0x0c
}

/// Login stages carried in CSG and NSG (RFC 7143 §11.12.3). The value 2 is reserved.
public enum LoginStage: UInt8, Sendable, Hashable, CaseIterable {
    /// SecurityNegotiation (0).
    case securityNegotiation = 0
    /// LoginOperationalNegotiation (1).
    case loginOperationalNegotiation = 1
    /// FullFeaturePhase (3).
    case fullFeaturePhase = 3
}
