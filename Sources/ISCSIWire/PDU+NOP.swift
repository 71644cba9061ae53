import NIOCore

/// NOP-Out (RFC 7143 §11.18).
public struct NOPOutPDU: Sendable, Equatable {
    /// I bit.
    public var immediate: Bool
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag (§11.18.1); 0xffffffff when answering a NOP-In.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.18.2); the NOP-In's TTT when answering one.
    public var targetTransferTag: UInt32
    /// CmdSN.
    public var cmdSN: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32
    /// Ping data (§11.18.4).
    public var dataSegment: ByteBuffer

    public init(
        immediate: Bool = false, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0xffff_ffff,
        targetTransferTag: UInt32 = 0xffff_ffff, cmdSN: UInt32 = 0, expStatSN: UInt32 = 0,
        dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.immediate = immediate
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.dataSegment = dataSegment
    }
}

extension NOPOutPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .nopOut }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            immediate: h.immediate, lun: h.lun, initiatorTaskTag: h.initiatorTaskTag,
            targetTransferTag: h.u32(20), cmdSN: h.u32(24), expStatSN: h.u32(28), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setImmediate(immediate)
        h.setFinal(true)  // RFC 7143 §11.18: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
    }
}

/// NOP-In (RFC 7143 §11.19).
public struct NOPInPDU: Sendable, Equatable {
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag (§11.19.1); 0xffffffff for a target-initiated ping.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.19.2); 0xffffffff when no answer is wanted.
    public var targetTransferTag: UInt32
    /// StatSN (§11.19.3).
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// Ping data echoed back (§11.19.5).
    public var dataSegment: ByteBuffer

    public init(
        lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0xffff_ffff, targetTransferTag: UInt32 = 0xffff_ffff,
        statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.dataSegment = dataSegment
    }
}

extension NOPInPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .nopIn }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            lun: h.lun, initiatorTaskTag: h.initiatorTaskTag, targetTransferTag: h.u32(20),
            statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.19: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
    }
}
