/// What this copy manager offers (SPC-4 §6.18.4, RECEIVE COPY RESULTS
/// OPERATING PARAMETERS; the same values bound ``ExtendedCopyParameters/decode(_:)``).
public enum ExtendedCopyLimits {
    /// MAXIMUM TARGET DESCRIPTOR COUNT (CSCD descriptors per command).
    public static let maximumTargetDescriptors = 8
    /// MAXIMUM SEGMENT DESCRIPTOR COUNT.
    public static let maximumSegmentDescriptors = 8
    /// MAXIMUM DESCRIPTOR LIST LENGTH in bytes (target plus segment lists).
    public static let maximumDescriptorListLength = 512
    /// MAXIMUM SEGMENT LENGTH in bytes.
    public static let maximumSegmentLength: UInt32 = 64 << 20
    /// Descriptor type codes implemented: block→block segment, identification CSCD.
    public static let implementedDescriptorTypes: [UInt8] = [0x02, 0xE4]
    /// Length of the parameter list header (SPC-4 §6.3.1, table 111).
    public static let headerLength = 16
    /// Every CSCD descriptor this copy manager reads is 32 bytes (SPC-4 §6.3.6.1).
    public static let targetDescriptorLength = 32
}

/// One identification CSCD descriptor (type E4h, SPC-4 §6.3.6.2): the
/// logical unit named by a designator, as the VPD 0x83 page reports it.
public struct CopyTargetDescriptor: Hashable, Sendable {
    /// CODE SET, ASSOCIATION and DESIGNATOR TYPE as in VPD 0x83.
    public var codeSet: UInt8
    public var association: UInt8
    public var designatorType: UInt8
    /// The designator bytes (an NAA designator for this target's LUs).
    public var designator: [UInt8]
    /// DISK BLOCK LENGTH from the block device type specific parameters.
    public var blockLength: UInt32
}

/// One block device to block device segment descriptor (type 02h, SPC-4 §6.3.7.5).
public struct BlockCopySegment: Hashable, Sendable {
    /// Index into the CSCD list of the source and destination.
    public var sourceIndex: UInt16
    public var destinationIndex: UInt16
    /// NUMBER OF BLOCKS (source blocks when DC = 0).
    public var blockCount: UInt16
    public var sourceLBA: UInt64
    public var destinationLBA: UInt64
    /// DC: NUMBER OF BLOCKS counts destination blocks.
    public var destinationCount: Bool
}

/// The EXTENDED COPY (LID1) parameter list (SPC-4 §6.3.1).
public struct ExtendedCopyParameters: Hashable, Sendable {
    /// LIST IDENTIFIER.
    public var listIdentifier: UInt8
    /// LIST ID USAGE: 00b hold results, 10b discard, 11b list id not unique.
    public var listIdentifierUsage: UInt8
    public var targets: [CopyTargetDescriptor]
    public var segments: [BlockCopySegment]

    /// Whether RECEIVE COPY RESULTS may later ask for this copy's status (LIST ID USAGE 00b or 01b).
    public var holdsResults: Bool { listIdentifierUsage < 2 }

    /// Decodes the parameter list in the order SPC-4 §6.3.1 checks it: the
    /// lengths against the data and the limits (PARAMETER LIST LENGTH ERROR),
    /// descriptor counts (TOO MANY … DESCRIPTORS), then type codes
    /// (UNSUPPORTED … DESCRIPTOR TYPE CODE). Never traps on any input.
    public static func decode(_ b: [UInt8]) throws(SenseData) -> ExtendedCopyParameters {
        let h = ExtendedCopyLimits.headerLength
        guard b.count >= h else { throw SenseData(.parameterListLengthError) }
        let targetListLength = Int(b.be16(2))
        let segmentListLength = Int(b.be32(8))
        let inlineLength = Int(b.be32(12))
        // SPC-4 §6.3.1: the lists must fit in the parameter list.
        let (sum1, o1) = targetListLength.addingReportingOverflow(segmentListLength)
        let (total, o2) = sum1.addingReportingOverflow(inlineLength)
        if o1 || o2 || h + total > b.count { throw SenseData(.parameterListLengthError) }
        // MAXIMUM DESCRIPTOR LIST LENGTH exceeded → PARAMETER LIST LENGTH ERROR.
        if sum1 > ExtendedCopyLimits.maximumDescriptorListLength { throw SenseData(.parameterListLengthError) }
        // No inline data or held data is offered (MAXIMUM INLINE DATA LENGTH 0).
        if inlineLength != 0 { throw SenseData.invalidParameter(byte: 12) }
        let tl = ExtendedCopyLimits.targetDescriptorLength
        if targetListLength % tl != 0 { throw SenseData(.parameterListLengthError) }
        if targetListLength / tl > ExtendedCopyLimits.maximumTargetDescriptors {
            throw SenseData(.tooManyTargetDescriptors)
        }
        // Walk the segment list first for its count (variable-length descriptors).
        var segmentOffsets: [Int] = []
        var at = h + targetListLength
        let segmentEnd = at + segmentListLength
        while at < segmentEnd {
            guard at + 4 <= segmentEnd else { throw SenseData(.parameterListLengthError) }
            let length = 4 + Int(b.be16(at + 2))
            guard at + length <= segmentEnd else { throw SenseData(.parameterListLengthError) }
            segmentOffsets.append(at)
            at += length
        }
        if segmentOffsets.count > ExtendedCopyLimits.maximumSegmentDescriptors {
            throw SenseData(.tooManySegmentDescriptors)
        }
        var targets: [CopyTargetDescriptor] = []
        for i in 0..<(targetListLength / tl) {
            let o = h + i * tl
            // SPC-4 §6.3.6.1: only the identification descriptor (E4h) is implemented.
            guard b[o] == 0xE4 else {
                throw SenseData(
                    .unsupportedTargetDescriptorTypeCode, fieldPointer: FieldPointer(inCDB: false, byte: o))
            }
            // PERIPHERAL DEVICE TYPE must be 00h (block device).
            if b[o + 1] & 0x1F != 0 { throw SenseData.invalidParameter(byte: o + 1) }
            let length = min(Int(b[o + 7]), 20)
            targets.append(
                CopyTargetDescriptor(
                    codeSet: b[o + 4] & 0x0F, association: (b[o + 5] >> 4) & 0x03, designatorType: b[o + 5] & 0x0F,
                    designator: Array(b[(o + 8)..<(o + 8 + length)]),
                    blockLength: UInt32(b[o + 29]) << 16 | UInt32(b[o + 30]) << 8 | UInt32(b[o + 31])))
        }
        var segments: [BlockCopySegment] = []
        for o in segmentOffsets {
            guard b[o] == 0x02 else {
                throw SenseData(
                    .unsupportedSegmentDescriptorTypeCode, fieldPointer: FieldPointer(inCDB: false, byte: o))
            }
            // SPC-4 §6.3.7.5: DESCRIPTOR LENGTH is 0018h.
            guard b.be16(o + 2) == 0x18 else { throw SenseData.invalidParameter(byte: o + 2) }
            segments.append(
                BlockCopySegment(
                    sourceIndex: b.be16(o + 4), destinationIndex: b.be16(o + 6), blockCount: b.be16(o + 10),
                    sourceLBA: b.be64(o + 12), destinationLBA: b.be64(o + 20), destinationCount: b[o + 1] & 0x02 != 0))
        }
        return ExtendedCopyParameters(
            listIdentifier: b[0], listIdentifierUsage: (b[1] >> 3) & 0x03, targets: targets, segments: segments)
    }
}

/// RECEIVE COPY RESULTS parameter data builders (SPC-4 §6.18).
public enum CopyResultsData {
    /// COPY STATUS (SPC-4 §6.18.2): status 1 = completed without errors, 2 = with errors.
    public static func copyStatus(succeeded: Bool, segmentsProcessed: UInt16, transferredBlocks: UInt32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12)
        b.put32(8, at: 0)
        b[4] = succeeded ? 0x01 : 0x02
        b.put16(segmentsProcessed, at: 5)
        b[7] = 0xF1  // TRANSFER COUNT UNITS: logical blocks of the destination
        b.put32(transferredBlocks, at: 8)
        return b
    }

    /// OPERATING PARAMETERS (SPC-4 §6.18.4).
    public static func operatingParameters() -> [UInt8] {
        let types = ExtendedCopyLimits.implementedDescriptorTypes
        var b = [UInt8](repeating: 0, count: 44)
        b[4] = 0x01  // SNLID: list identifiers of different nexuses are separate
        b.put16(UInt16(ExtendedCopyLimits.maximumTargetDescriptors), at: 8)
        b.put16(UInt16(ExtendedCopyLimits.maximumSegmentDescriptors), at: 10)
        b.put32(UInt32(ExtendedCopyLimits.maximumDescriptorListLength), at: 12)
        b.put32(ExtendedCopyLimits.maximumSegmentLength, at: 16)
        b.put16(1, at: 34)  // TOTAL CONCURRENT COPIES
        b[36] = 1  // MAXIMUM CONCURRENT COPIES
        b[43] = UInt8(types.count)
        b += types
        b.put32(UInt32(b.count - 4), at: 0)
        return b
    }

    /// FAILED SEGMENT DETAILS / RECEIVE DATA with nothing held (SPC-4 §6.18.3, §6.18.5).
    public static func empty(_ action: ReceiveCopyResultsAction) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: action == .failedSegmentDetails ? 60 : 4)
        b.put32(UInt32(b.count - 4), at: 0)
        return b
    }
}
