import NIOCore

/// SCSI Task Management Function Request (RFC 7143 §11.5).
public struct TaskManagementRequestPDU: Sendable, Equatable {
    /// I bit.
    public var immediate: Bool
    /// Function, 7 bits (§11.5.1): 1 ABORT TASK ... 8 TASK REASSIGN.
    public var function: UInt8
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag of this request.
    public var initiatorTaskTag: UInt32
    /// Referenced Task Tag (§11.5.2).
    public var referencedTaskTag: UInt32
    /// CmdSN.
    public var cmdSN: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32
    /// RefCmdSN (§11.5.3).
    public var refCmdSN: UInt32
    /// ExpDataSN (§11.5.4).
    public var expDataSN: UInt32

    public init(
        immediate: Bool = false, function: UInt8 = 0, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0,
        referencedTaskTag: UInt32 = 0xffff_ffff, cmdSN: UInt32 = 0, expStatSN: UInt32 = 0,
        refCmdSN: UInt32 = 0, expDataSN: UInt32 = 0
    ) {
        self.immediate = immediate
        self.function = function
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.referencedTaskTag = referencedTaskTag
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.refCmdSN = refCmdSN
        self.expDataSN = expDataSN
    }
}

extension TaskManagementRequestPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .taskManagementRequest }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            immediate: h.immediate, function: h.u8(1) & 0x7f, lun: h.lun,
            initiatorTaskTag: h.initiatorTaskTag, referencedTaskTag: h.u32(20), cmdSN: h.u32(24),
            expStatSN: h.u32(28), refCmdSN: h.u32(32), expDataSN: h.u32(36))
    }

    func encode(into h: inout BHSWriter) {
        h.setImmediate(immediate)
        h.set(0x80 | (function & 0x7f), 1)  // RFC 7143 §11.5: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(referencedTaskTag, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
        h.set(refCmdSN, 32)
        h.set(expDataSN, 36)
    }
}

/// SCSI Task Management Function Response (RFC 7143 §11.6).
public struct TaskManagementResponsePDU: Sendable, Equatable {
    /// Response (§11.6.1): 0 Function complete, 1 Task does not exist, ...
    public var response: UInt8
    /// Initiator Task Tag of the request.
    public var initiatorTaskTag: UInt32
    /// StatSN.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32

    public init(
        response: UInt8 = 0, initiatorTaskTag: UInt32 = 0, statSN: UInt32 = 0, expCmdSN: UInt32 = 0,
        maxCmdSN: UInt32 = 0
    ) {
        self.response = response
        self.initiatorTaskTag = initiatorTaskTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
    }
}

extension TaskManagementResponsePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .taskManagementResponse }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            response: h.u8(2), initiatorTaskTag: h.initiatorTaskTag, statSN: h.u32(24),
            expCmdSN: h.u32(28), maxCmdSN: h.u32(32))
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.6: byte 1 bit 7 is 1.
        h.set(response, 2)
        h.set(initiatorTaskTag, 16)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
    }
}
