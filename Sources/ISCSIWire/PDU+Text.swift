import NIOCore

/// Text Request (RFC 7143 §11.10).
public struct TextRequestPDU: Sendable, Equatable {
    /// I bit.
    public var immediate: Bool
    /// F bit: the last PDU of the request (§11.10.1).
    public var final: Bool
    /// C bit: the text continues in the next PDU (§11.10.2).
    public var `continue`: Bool
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag (§11.10.3).
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.10.4); 0xffffffff to start.
    public var targetTransferTag: UInt32
    /// CmdSN.
    public var cmdSN: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32
    /// Text key=value pairs, NUL-separated (§11.10.5).
    public var dataSegment: ByteBuffer

    public init(
        immediate: Bool = false, final: Bool = true, continue: Bool = false, lun: UInt64 = 0,
        initiatorTaskTag: UInt32 = 0, targetTransferTag: UInt32 = 0xffff_ffff, cmdSN: UInt32 = 0,
        expStatSN: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.immediate = immediate
        self.final = final
        self.continue = `continue`
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.dataSegment = dataSegment
    }
}

extension TextRequestPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .textRequest }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            immediate: h.immediate, final: h.final, continue: h.bit(1, 0x40), lun: h.lun,
            initiatorTaskTag: h.initiatorTaskTag, targetTransferTag: h.u32(20), cmdSN: h.u32(24),
            expStatSN: h.u32(28), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setImmediate(immediate)
        h.set(UInt8((final ? 0x80 : 0) | (self.continue ? 0x40 : 0)), 1)
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
    }
}

/// Text Response (RFC 7143 §11.11).
public struct TextResponsePDU: Sendable, Equatable {
    /// F bit (§11.11.1).
    public var final: Bool
    /// C bit (§11.11.2).
    public var `continue`: Bool
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.11.4): 0xffffffff on the final response.
    public var targetTransferTag: UInt32
    /// StatSN.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// Text key=value pairs (§11.11.6).
    public var dataSegment: ByteBuffer

    public init(
        final: Bool = true, continue: Bool = false, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0,
        targetTransferTag: UInt32 = 0xffff_ffff, statSN: UInt32 = 0, expCmdSN: UInt32 = 0,
        maxCmdSN: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.final = final
        self.continue = `continue`
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.dataSegment = dataSegment
    }
}

extension TextResponsePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .textResponse }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            final: h.final, continue: h.bit(1, 0x40), lun: h.lun, initiatorTaskTag: h.initiatorTaskTag,
            targetTransferTag: h.u32(20), statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32),
            dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.set(UInt8((final ? 0x80 : 0) | (self.continue ? 0x40 : 0)), 1)
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
    }
}
