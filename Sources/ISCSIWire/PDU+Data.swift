import NIOCore

/// SCSI Data-Out (RFC 7143 §11.7).
public struct DataOutPDU: Sendable, Equatable {
    /// F bit: last PDU of the sequence (§11.7.1).
    public var final: Bool
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.7.4); 0xffffffff for unsolicited data.
    public var targetTransferTag: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32
    /// DataSN (§11.7.5).
    public var dataSN: UInt32
    /// Buffer Offset (§11.7.6).
    public var bufferOffset: UInt32
    /// The data.
    public var dataSegment: ByteBuffer

    public init(
        final: Bool = false, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0,
        targetTransferTag: UInt32 = 0xffff_ffff, expStatSN: UInt32 = 0, dataSN: UInt32 = 0,
        bufferOffset: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.final = final
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.expStatSN = expStatSN
        self.dataSN = dataSN
        self.bufferOffset = bufferOffset
        self.dataSegment = dataSegment
    }
}

extension DataOutPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .dataOut }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            final: h.final, lun: h.lun, initiatorTaskTag: h.initiatorTaskTag,
            targetTransferTag: h.u32(20), expStatSN: h.u32(28), dataSN: h.u32(36),
            bufferOffset: h.u32(40), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(final)
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(expStatSN, 28)
        h.set(dataSN, 36)
        h.set(bufferOffset, 40)
    }
}

/// SCSI Data-In (RFC 7143 §11.7).
public struct DataInPDU: Sendable, Equatable {
    /// F bit (§11.7.1).
    public var final: Bool
    /// A bit: acknowledge requested (§11.7.2).
    public var acknowledge: Bool
    /// O bit (§11.7.3), meaningful with `statusPresent`.
    public var residualOverflow: Bool
    /// U bit (§11.7.3), meaningful with `statusPresent`.
    public var residualUnderflow: Bool
    /// S bit: the PDU carries status (§11.7.3).
    public var statusPresent: Bool
    /// SCSI status, valid with `statusPresent`.
    public var status: UInt8
    /// LUN, the 8-byte field as is (§11.7.4).
    public var lun: UInt64
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.7.4).
    public var targetTransferTag: UInt32
    /// StatSN, valid with `statusPresent`.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// DataSN (§11.7.5).
    public var dataSN: UInt32
    /// Buffer Offset (§11.7.6).
    public var bufferOffset: UInt32
    /// Residual Count (§11.7.7).
    public var residualCount: UInt32
    /// The data.
    public var dataSegment: ByteBuffer

    public init(
        final: Bool = false, acknowledge: Bool = false, residualOverflow: Bool = false,
        residualUnderflow: Bool = false, statusPresent: Bool = false, status: UInt8 = 0,
        lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0, targetTransferTag: UInt32 = 0xffff_ffff,
        statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0, dataSN: UInt32 = 0,
        bufferOffset: UInt32 = 0, residualCount: UInt32 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.final = final
        self.acknowledge = acknowledge
        self.residualOverflow = residualOverflow
        self.residualUnderflow = residualUnderflow
        self.statusPresent = statusPresent
        self.status = status
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.dataSN = dataSN
        self.bufferOffset = bufferOffset
        self.residualCount = residualCount
        self.dataSegment = dataSegment
    }
}

extension DataInPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .dataIn }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        let flags = h.u8(1)
        self.init(
            final: flags & 0x80 != 0, acknowledge: flags & 0x40 != 0,
            residualOverflow: flags & 0x04 != 0, residualUnderflow: flags & 0x02 != 0,
            statusPresent: flags & 0x01 != 0, status: h.u8(3), lun: h.lun,
            initiatorTaskTag: h.initiatorTaskTag, targetTransferTag: h.u32(20), statSN: h.u32(24),
            expCmdSN: h.u32(28), maxCmdSN: h.u32(32), dataSN: h.u32(36), bufferOffset: h.u32(40),
            residualCount: h.u32(44), dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        var flags: UInt8 = 0
        if final { flags |= 0x80 }
        if acknowledge { flags |= 0x40 }
        if residualOverflow { flags |= 0x04 }
        if residualUnderflow { flags |= 0x02 }
        if statusPresent { flags |= 0x01 }
        h.set(flags, 1)
        h.set(status, 3)
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(dataSN, 36)
        h.set(bufferOffset, 40)
        h.set(residualCount, 44)
    }
}

/// Ready To Transfer (RFC 7143 §11.8).
public struct R2TPDU: Sendable, Equatable {
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// Target Transfer Tag (§11.8.4).
    public var targetTransferTag: UInt32
    /// StatSN (not advanced by R2T).
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// R2TSN (§11.8.2).
    public var r2tSN: UInt32
    /// Buffer Offset (§11.8.3).
    public var bufferOffset: UInt32
    /// Desired Data Transfer Length (§11.8.4).
    public var desiredDataTransferLength: UInt32

    public init(
        lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0, targetTransferTag: UInt32 = 0,
        statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0, r2tSN: UInt32 = 0,
        bufferOffset: UInt32 = 0, desiredDataTransferLength: UInt32 = 0
    ) {
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.targetTransferTag = targetTransferTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.r2tSN = r2tSN
        self.bufferOffset = bufferOffset
        self.desiredDataTransferLength = desiredDataTransferLength
    }
}

extension R2TPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .r2t }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            lun: h.lun, initiatorTaskTag: h.initiatorTaskTag, targetTransferTag: h.u32(20),
            statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32), r2tSN: h.u32(36),
            bufferOffset: h.u32(40), desiredDataTransferLength: h.u32(44))
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.8: byte 1 bit 7 is 1.
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(targetTransferTag, 20)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(r2tSN, 36)
        h.set(bufferOffset, 40)
        h.set(desiredDataTransferLength, 44)
    }
}
