import NIOCore

/// SNACK Request (RFC 7143 §11.16).
public struct SNACKRequestPDU: Sendable, Equatable {
    /// Type, 4 bits (§11.16.1): 0 Data/R2T, 1 Status, 2 DataACK, 3 R-Data.
    public var type: UInt8
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag (0xffffffff for Status SNACK).
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag or SNACK Tag (§11.16.3).
    public var targetTransferTag: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32
    /// BegRun (§11.16.4).
    public var begRun: UInt32
    /// RunLength (§11.16.5).
    public var runLength: UInt32

    public init(
        type: UInt8 = 0, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0xffff_ffff,
        targetTransferTag: UInt32 = 0xffff_ffff, expStatSN: UInt32 = 0, begRun: UInt32 = 0,
        runLength: UInt32 = 0
    ) {
        self.type = type
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.expStatSN = expStatSN
        self.begRun = begRun
        self.runLength = runLength
    }
}

extension SNACKRequestPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .snackRequest }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            type: h.u8(1) & 0x0f, lun: h.lun, initiatorTaskTag: h.initiatorTaskTag,
            targetTransferTag: h.u32(20), expStatSN: h.u32(28), begRun: h.u32(40), runLength: h.u32(44))
    }

    func encode(into h: inout BHSWriter) {
        h.set(0x80 | (type & 0x0f), 1)  // RFC 7143 §11.16: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(expStatSN, 28)
        h.set(begRun, 40)
        h.set(runLength, 44)
    }
}

/// Asynchronous Message (RFC 7143 §11.9).
public struct AsyncMessagePDU: Sendable, Equatable {
    /// LUN, the 8-byte field as is (valid for AsyncEvent 0).
    public var lun: UInt64
    /// StatSN.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// AsyncEvent (§11.9.1).
    public var asyncEvent: UInt8
    /// AsyncVCode (§11.9.2).
    public var asyncVCode: UInt8
    /// Parameter1 (§11.9.1).
    public var parameter1: UInt16
    /// Parameter2 (§11.9.1).
    public var parameter2: UInt16
    /// Parameter3 (§11.9.1).
    public var parameter3: UInt16
    /// Sense data and iSCSI event data (§11.9.4).
    public var dataSegment: ByteBuffer

    public init(
        lun: UInt64 = 0, statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0,
        asyncEvent: UInt8 = 0, asyncVCode: UInt8 = 0, parameter1: UInt16 = 0, parameter2: UInt16 = 0,
        parameter3: UInt16 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.lun = lun
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.asyncEvent = asyncEvent
        self.asyncVCode = asyncVCode
        self.parameter1 = parameter1
        self.parameter2 = parameter2
        self.parameter3 = parameter3
        self.dataSegment = dataSegment
    }
}

extension AsyncMessagePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .asyncMessage }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            lun: h.lun, statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32),
            asyncEvent: h.u8(36), asyncVCode: h.u8(37), parameter1: h.u16(38), parameter2: h.u16(40),
            parameter3: h.u16(42), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.9: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(UInt32(0xffff_ffff), 16)  // RFC 7143 §11.9: Initiator Task Tag is 0xffffffff.
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(asyncEvent, 36)
        h.set(asyncVCode, 37)
        h.set(parameter1, 38)
        h.set(parameter2, 40)
        h.set(parameter3, 42)
    }
}

/// Reject (RFC 7143 §11.17).
public struct RejectPDU: Sendable, Equatable {
    /// Reason (§11.17.1); see `RejectReason`.
    public var reason: UInt8
    /// StatSN (not advanced by Reject).
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// DataSN/R2TSN (§11.17.2), for a rejected SNACK.
    public var dataSN: UInt32
    /// The complete 48-byte BHS of the rejected PDU (§11.17.3).
    public var dataSegment: ByteBuffer

    public init(
        reason: UInt8 = RejectReason.protocolError, statSN: UInt32 = 0, expCmdSN: UInt32 = 0,
        maxCmdSN: UInt32 = 0, dataSN: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.reason = reason
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.dataSN = dataSN
        self.dataSegment = dataSegment
    }
}

extension RejectPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .reject }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            reason: h.u8(2), statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32),
            dataSN: h.u32(36), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.17: byte 1 bit 7 is 1.
        h.set(reason, 2)
        h.set(UInt32(0xffff_ffff), 16)  // RFC 7143 §11.17: Initiator Task Tag is 0xffffffff.
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(dataSN, 36)
    }
}
