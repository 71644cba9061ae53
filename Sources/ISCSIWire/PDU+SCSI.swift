import NIOCore

/// SCSI Command (RFC 7143 §11.3).
public struct SCSICommandPDU: Sendable, Equatable {
    /// I bit: immediate delivery.
    public var immediate: Bool
    /// F bit: no unsolicited Data-Out follows (§11.3.1).
    public var final: Bool
    /// R bit: data is expected from the target (§11.3.1).
    public var read: Bool
    /// W bit: data is expected from the initiator (§11.3.1).
    public var write: Bool
    /// ATTR, task attribute in the low 3 bits (§11.3.1).
    public var attribute: UInt8
    /// LUN, the 8-byte field as is.
    public var lun: UInt64
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// Expected Data Transfer Length (§11.3.4).
    public var expectedDataTransferLength: UInt32
    /// CmdSN (§11.3.5).
    public var cmdSN: UInt32
    /// ExpStatSN (§11.3.6).
    public var expStatSN: UInt32
    /// The CDB: the 16 bytes of the BHS followed by any Extended CDB AHS
    /// bytes (§11.3.7, §11.2.2.3). Encoding pads a shorter CDB with zeros.
    public var cdb: [UInt8]
    /// Bidirectional Read Expected Data Transfer Length AHS (§11.2.2.4), if present.
    public var bidirectionalReadExpectedDataTransferLength: UInt32?
    /// Immediate data (§11.3.8).
    public var dataSegment: ByteBuffer

    public init(
        immediate: Bool = false, final: Bool = true, read: Bool = false, write: Bool = false,
        attribute: UInt8 = 0, lun: UInt64 = 0, initiatorTaskTag: UInt32 = 0,
        expectedDataTransferLength: UInt32 = 0, cmdSN: UInt32 = 0, expStatSN: UInt32 = 0,
        cdb: [UInt8] = [UInt8](repeating: 0, count: 16),
        bidirectionalReadExpectedDataTransferLength: UInt32? = nil,
        dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.immediate = immediate
        self.final = final
        self.read = read
        self.write = write
        self.attribute = attribute
        self.lun = lun
        self.initiatorTaskTag = initiatorTaskTag
        self.expectedDataTransferLength = expectedDataTransferLength
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.cdb = cdb
        self.bidirectionalReadExpectedDataTransferLength = bidirectionalReadExpectedDataTransferLength
        self.dataSegment = dataSegment
    }
}

/// AHSType values (RFC 7143 §11.2.2.2).
enum AHSType {
    /// Extended CDB (§11.2.2.3).
    static let extendedCDB: UInt8 = 1
    /// Bidirectional Read Expected Data Transfer Length (§11.2.2.4).
    static let bidirectionalReadExpectedDataTransferLength: UInt8 = 2
}

extension SCSICommandPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .scsiCommand }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        let flags = h.u8(1)
        let base = h.bytes.readerIndex
        var cdb = h.bytes.getBytes(at: base + 32, length: 16) ?? [UInt8](repeating: 0, count: 16)
        var bidi: UInt32? = nil
        var ahs = h.additionalHeaderSegments
        while ahs.readableBytes > 0 {
            // RFC 7143 §11.2.2.1: AHSLength(2) AHSType(1) AHS-Specific(1...), padded to 4.
            guard let ahsLength = ahs.readInteger(as: UInt16.self), let type = ahs.readInteger(as: UInt8.self),
                ahsLength >= 1, ahs.readableBytes >= Int(ahsLength)
            else {
                throw PDUFieldError(detail: "truncated AHS")
            }
            var body = ahs.readSlice(length: Int(ahsLength)) ?? ByteBuffer()
            ahs.moveReaderIndex(forwardBy: min(ahs.readableBytes, PDULayout.padding(Int(ahsLength) + 3)))
            body.moveReaderIndex(forwardBy: 1)  // AHS-Specific (reserved for types 1 and 2)
            switch type {
            case AHSType.extendedCDB:
                // RFC 7143 §11.2.2.3: AHSLength = CDBLength - 15.
                cdb.append(contentsOf: body.readableBytesView)
            case AHSType.bidirectionalReadExpectedDataTransferLength:
                // RFC 7143 §11.2.2.4: AHSLength is 0x0005.
                guard ahsLength == 5, let value = body.readInteger(as: UInt32.self) else {
                    throw PDUFieldError(detail: "bidirectional AHS length \(ahsLength)")
                }
                bidi = value
            default:
                throw PDUFieldError(detail: "unknown AHSType \(type)")
            }
        }
        self.init(
            immediate: h.immediate, final: flags & 0x80 != 0, read: flags & 0x40 != 0,
            write: flags & 0x20 != 0, attribute: flags & 0x07, lun: h.lun,
            initiatorTaskTag: h.initiatorTaskTag, expectedDataTransferLength: h.u32(20),
            cmdSN: h.u32(24), expStatSN: h.u32(28), cdb: cdb,
            bidirectionalReadExpectedDataTransferLength: bidi, dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.setImmediate(immediate)
        h.set((final ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | (attribute & 0x07), 1)
        h.set(lun, 8)
        h.set(initiatorTaskTag, 16)
        h.set(expectedDataTransferLength, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
        let inline = cdb.prefix(16)
        h.buffer.setBytes(inline, at: h.base + 32)
        if cdb.count > 16 {
            h.appendAHS(type: AHSType.extendedCDB, data: cdb[16...])
        }
        if let bidi = bidirectionalReadExpectedDataTransferLength {
            h.appendAHS(
                type: AHSType.bidirectionalReadExpectedDataTransferLength,
                data: [UInt8(truncatingIfNeeded: bidi >> 24), UInt8(truncatingIfNeeded: bidi >> 16),
                       UInt8(truncatingIfNeeded: bidi >> 8), UInt8(truncatingIfNeeded: bidi)])
        }
    }
}

/// SCSI Response (RFC 7143 §11.4).
public struct SCSIResponsePDU: Sendable, Equatable {
    /// o bit: Bidirectional Read Residual Overflow (§11.4.1).
    public var bidirectionalReadResidualOverflow: Bool
    /// u bit: Bidirectional Read Residual Underflow (§11.4.1).
    public var bidirectionalReadResidualUnderflow: Bool
    /// O bit: Residual Overflow (§11.4.1).
    public var residualOverflow: Bool
    /// U bit: Residual Underflow (§11.4.1).
    public var residualUnderflow: Bool
    /// Response (§11.4.3): 0x00 Command Completed at Target, 0x01 Target Failure.
    public var response: UInt8
    /// SCSI status (§11.4.2).
    public var status: UInt8
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// SNACK Tag (§11.4.4).
    public var snackTag: UInt32
    /// StatSN.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// ExpDataSN (§11.4.6).
    public var expDataSN: UInt32
    /// Bidirectional Read Residual Count (§11.4.5).
    public var bidirectionalReadResidualCount: UInt32
    /// Residual Count (§11.4.5).
    public var residualCount: UInt32
    /// SenseLength (2 bytes) + sense data (§11.4.7); see `senseSegment(_:)`.
    public var dataSegment: ByteBuffer

    public init(
        bidirectionalReadResidualOverflow: Bool = false, bidirectionalReadResidualUnderflow: Bool = false,
        residualOverflow: Bool = false, residualUnderflow: Bool = false,
        response: UInt8 = 0, status: UInt8 = 0, initiatorTaskTag: UInt32 = 0, snackTag: UInt32 = 0,
        statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0, expDataSN: UInt32 = 0,
        bidirectionalReadResidualCount: UInt32 = 0, residualCount: UInt32 = 0,
        dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.bidirectionalReadResidualOverflow = bidirectionalReadResidualOverflow
        self.bidirectionalReadResidualUnderflow = bidirectionalReadResidualUnderflow
        self.residualOverflow = residualOverflow
        self.residualUnderflow = residualUnderflow
        self.response = response
        self.status = status
        self.initiatorTaskTag = initiatorTaskTag
        self.snackTag = snackTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.expDataSN = expDataSN
        self.bidirectionalReadResidualCount = bidirectionalReadResidualCount
        self.residualCount = residualCount
        self.dataSegment = dataSegment
    }

    /// The data segment for sense data: SenseLength (2 bytes, big-endian) then
    /// the sense bytes (RFC 7143 §11.4.7.2). Empty sense gives an empty segment.
    public static func senseSegment(_ sense: [UInt8]) -> ByteBuffer {
        guard !sense.isEmpty else { return ByteBuffer() }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(2 + sense.count)
        buffer.writeInteger(UInt16(truncatingIfNeeded: sense.count))
        buffer.writeBytes(sense)
        return buffer
    }

    /// The sense bytes of `dataSegment` (RFC 7143 §11.4.7.2), empty if none
    /// or if SenseLength overruns the segment.
    public var senseData: [UInt8] {
        guard let length = dataSegment.getInteger(at: dataSegment.readerIndex, as: UInt16.self),
            let bytes = dataSegment.getBytes(at: dataSegment.readerIndex + 2, length: Int(length))
        else { return [] }
        return bytes
    }
}

extension SCSIResponsePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .scsiResponse }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        let flags = h.u8(1)
        self.init(
            bidirectionalReadResidualOverflow: flags & 0x10 != 0,
            bidirectionalReadResidualUnderflow: flags & 0x08 != 0,
            residualOverflow: flags & 0x04 != 0, residualUnderflow: flags & 0x02 != 0,
            response: h.u8(2), status: h.u8(3), initiatorTaskTag: h.initiatorTaskTag,
            snackTag: h.u32(20), statSN: h.u32(24), expCmdSN: h.u32(28), maxCmdSN: h.u32(32),
            expDataSN: h.u32(36), bidirectionalReadResidualCount: h.u32(40), residualCount: h.u32(44),
            dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        var flags: UInt8 = 0x80  // RFC 7143 §11.4: byte 1 bit 7 is 1.
        if bidirectionalReadResidualOverflow { flags |= 0x10 }
        if bidirectionalReadResidualUnderflow { flags |= 0x08 }
        if residualOverflow { flags |= 0x04 }
        if residualUnderflow { flags |= 0x02 }
        h.set(flags, 1)
        h.set(response, 2)
        h.set(status, 3)
        h.set(initiatorTaskTag, 16)
        h.set(snackTag, 20)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(expDataSN, 36)
        h.set(bidirectionalReadResidualCount, 40)
        h.set(residualCount, 44)
    }
}
