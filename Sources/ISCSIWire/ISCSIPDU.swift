import NIOCore

/// An iSCSI PDU (RFC 7143 §11): one case per opcode, each with its own struct.
public enum ISCSIPDU: Sendable, Equatable {
    /// NOP-Out (§11.18).
    case nopOut(NOPOutPDU)
    /// SCSI Command (§11.3).
    case scsiCommand(SCSICommandPDU)
    /// Task Management Function Request (§11.5).
    case taskManagementRequest(TaskManagementRequestPDU)
    /// Login Request (§11.12).
    case loginRequest(LoginRequestPDU)
    /// Text Request (§11.10).
    case textRequest(TextRequestPDU)
    /// SCSI Data-Out (§11.7).
    case dataOut(DataOutPDU)
    /// Logout Request (§11.14).
    case logoutRequest(LogoutRequestPDU)
    /// SNACK Request (§11.16).
    case snackRequest(SNACKRequestPDU)
    /// NOP-In (§11.19).
    case nopIn(NOPInPDU)
    /// SCSI Response (§11.4).
    case scsiResponse(SCSIResponsePDU)
    /// Task Management Function Response (§11.6).
    case taskManagementResponse(TaskManagementResponsePDU)
    /// Login Response (§11.13).
    case loginResponse(LoginResponsePDU)
    /// Text Response (§11.11).
    case textResponse(TextResponsePDU)
    /// SCSI Data-In (§11.7).
    case dataIn(DataInPDU)
    /// Logout Response (§11.15).
    case logoutResponse(LogoutResponsePDU)
    /// Ready To Transfer (§11.8).
    case r2t(R2TPDU)
    /// Asynchronous Message (§11.9).
    case asyncMessage(AsyncMessagePDU)
    /// Reject (§11.17).
    case reject(RejectPDU)

    /// The opcode of this PDU.
    public var opcode: ISCSIOpcode {
        switch self {
        case .nopOut: .nopOut
        case .scsiCommand: .scsiCommand
        case .taskManagementRequest: .taskManagementRequest
        case .loginRequest: .loginRequest
        case .textRequest: .textRequest
        case .dataOut: .dataOut
        case .logoutRequest: .logoutRequest
        case .snackRequest: .snackRequest
        case .nopIn: .nopIn
        case .scsiResponse: .scsiResponse
        case .taskManagementResponse: .taskManagementResponse
        case .loginResponse: .loginResponse
        case .textResponse: .textResponse
        case .dataIn: .dataIn
        case .logoutResponse: .logoutResponse
        case .r2t: .r2t
        case .asyncMessage: .asyncMessage
        case .reject: .reject
        }
    }

    /// The data segment (empty for PDUs that have none).
    public var dataSegment: ByteBuffer {
        switch self {
        case .nopOut(let p): p.dataSegment
        case .scsiCommand(let p): p.dataSegment
        case .loginRequest(let p): p.dataSegment
        case .textRequest(let p): p.dataSegment
        case .dataOut(let p): p.dataSegment
        case .nopIn(let p): p.dataSegment
        case .scsiResponse(let p): p.dataSegment
        case .loginResponse(let p): p.dataSegment
        case .textResponse(let p): p.dataSegment
        case .dataIn(let p): p.dataSegment
        case .asyncMessage(let p): p.dataSegment
        case .reject(let p): p.dataSegment
        case .taskManagementRequest, .logoutRequest, .snackRequest, .taskManagementResponse,
            .logoutResponse, .r2t:
            ByteBuffer()
        }
    }
}

/// One PDU struct's codec: `init(decoding:)` and `encode(into:)` side by side
/// in each PDU file.
protocol PDUCodable: Sendable {
    /// The opcode written into byte 0.
    static var opcode: ISCSIOpcode { get }
    /// Decodes the opcode-specific fields of `header`; `dataSegment` is
    /// already stripped of padding and digest.
    init(decoding header: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError)
    /// Writes the opcode-specific fields (and any AHS) into a zeroed BHS.
    /// TotalAHSLength and DataSegmentLength are set by the frame encoder.
    func encode(into header: inout BHSWriter)
}

extension ISCSIPDU {
    /// Decodes the PDU with `opcode`; nil for an opcode RFC 7143 does not define.
    static func decode(
        opcode: UInt8, header: BHSReader, dataSegment: ByteBuffer
    ) throws(PDUFieldError) -> ISCSIPDU? {
        guard let known = ISCSIOpcode(rawValue: opcode) else { return nil }
        let h = header
        let d = dataSegment
        switch known {
        case .nopOut: return .nopOut(try NOPOutPDU(decoding: h, dataSegment: d))
        case .scsiCommand: return .scsiCommand(try SCSICommandPDU(decoding: h, dataSegment: d))
        case .taskManagementRequest:
            return .taskManagementRequest(try TaskManagementRequestPDU(decoding: h, dataSegment: d))
        case .loginRequest: return .loginRequest(try LoginRequestPDU(decoding: h, dataSegment: d))
        case .textRequest: return .textRequest(try TextRequestPDU(decoding: h, dataSegment: d))
        case .dataOut: return .dataOut(try DataOutPDU(decoding: h, dataSegment: d))
        case .logoutRequest: return .logoutRequest(try LogoutRequestPDU(decoding: h, dataSegment: d))
        case .snackRequest: return .snackRequest(try SNACKRequestPDU(decoding: h, dataSegment: d))
        case .nopIn: return .nopIn(try NOPInPDU(decoding: h, dataSegment: d))
        case .scsiResponse: return .scsiResponse(try SCSIResponsePDU(decoding: h, dataSegment: d))
        case .taskManagementResponse:
            return .taskManagementResponse(try TaskManagementResponsePDU(decoding: h, dataSegment: d))
        case .loginResponse: return .loginResponse(try LoginResponsePDU(decoding: h, dataSegment: d))
        case .textResponse: return .textResponse(try TextResponsePDU(decoding: h, dataSegment: d))
        case .dataIn: return .dataIn(try DataInPDU(decoding: h, dataSegment: d))
        case .logoutResponse: return .logoutResponse(try LogoutResponsePDU(decoding: h, dataSegment: d))
        case .r2t: return .r2t(try R2TPDU(decoding: h, dataSegment: d))
        case .asyncMessage: return .asyncMessage(try AsyncMessagePDU(decoding: h, dataSegment: d))
        case .reject: return .reject(try RejectPDU(decoding: h, dataSegment: d))
        }
    }

    /// Writes the BHS (and AHS) of this PDU into `header`.
    func encodeHeader(into header: inout BHSWriter) {
        switch self {
        case .nopOut(let p): p.encode(into: &header)
        case .scsiCommand(let p): p.encode(into: &header)
        case .taskManagementRequest(let p): p.encode(into: &header)
        case .loginRequest(let p): p.encode(into: &header)
        case .textRequest(let p): p.encode(into: &header)
        case .dataOut(let p): p.encode(into: &header)
        case .logoutRequest(let p): p.encode(into: &header)
        case .snackRequest(let p): p.encode(into: &header)
        case .nopIn(let p): p.encode(into: &header)
        case .scsiResponse(let p): p.encode(into: &header)
        case .taskManagementResponse(let p): p.encode(into: &header)
        case .loginResponse(let p): p.encode(into: &header)
        case .textResponse(let p): p.encode(into: &header)
        case .dataIn(let p): p.encode(into: &header)
        case .logoutResponse(let p): p.encode(into: &header)
        case .r2t(let p): p.encode(into: &header)
        case .asyncMessage(let p): p.encode(into: &header)
        case .reject(let p): p.encode(into: &header)
        }
    }
}
