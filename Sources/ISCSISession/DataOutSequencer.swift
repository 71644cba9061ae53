import ISCSIWire
import NIOCore
import SCSIWire

/// The write side of one task: immediate data, unsolicited Data-Out within
/// FirstBurstLength, then R2T sequences of at most MaxBurstLength with at most
/// MaxOutstandingR2T in flight (RFC 7143 §4.2.5, §11.7, §11.8).
///
/// Collects the received bytes as slices; the handler copies them once into
/// the SCSI layer's buffer. Only the first ``bufferedLength`` bytes are kept
/// and solicited: the CDB's transfer length when it is below
/// ExpectedDataTransferLength (SAM-5 §5.4.3: the target transfers at most what
/// the command needs; RFC 7143 §11.4.5.2 reports the rest as a residual).
/// Unsolicited data beyond it, which the initiator may send up to EDTL
/// (RFC 7143 §13.14), is accepted on the wire and discarded.
///
/// After a Data-Out goes wrong (``fail(_:after:)``) the data is useless, but the
/// task's response still waits until every sequence the initiator has open ends
/// with its F bit (RFC 7143 §11.4.2, §7.8 b): ``drain(_:)`` counts those.
struct DataOutSequencer: Sendable {
    /// Why a Data-Out PDU was refused.
    enum Violation: Error, Equatable {
        /// The Target Transfer Tag names no R2T of this task.
        case unknownTargetTransferTag(UInt32)
        /// Unsolicited data after the unsolicited phase ended or when InitialR2T=Yes.
        case unexpectedUnsolicitedData
        /// DataSN differs from the next expected one.
        case dataSN(expected: UInt32, received: UInt32)
        /// BufferOffset outside the sequence or not the next one when DataPDUInOrder=Yes.
        case bufferOffset(expected: Int, received: Int)
        /// The data runs past the burst or past ExpectedDataTransferLength.
        case tooMuchData

        /// The iSCSI condition that ends the task (RFC 7143 §11.4.7.2), when the PDU
        /// belongs to a sequence the task has open; nil when it belongs to none
        /// (an R2T never sent, unsolicited data not allowed): then the target cannot
        /// tell when the initiator's data ends, and the error is a protocol error
        /// that ends the connection (RFC 7143 §7.13, ErrorRecoveryLevel 0).
        var condition: SenseReason? {
            switch self {
            // RFC 7143 §7.9: a DataSN out of order means an earlier Data-Out was lost
            // to a digest error, handled as §7.8 says: "protocol service CRC error".
            case .dataSN: .protocolServiceCRCError
            // RFC 7143 §11.4.7.2: "Incorrect amount of data" when "the amount of data
            // sent as a reply to an R2T does not match the amount requested".
            case .bufferOffset, .tooMuchData: .incorrectAmountOfData
            case .unknownTargetTransferTag, .unexpectedUnsolicitedData: nil
            }
        }
    }

    /// One R2T in flight.
    struct OutstandingR2T: Sendable, Equatable {
        var targetTransferTag: UInt32
        var r2tSN: UInt32
        var bufferOffset: Int
        var desiredDataTransferLength: Int
        var nextDataSN: UInt32 = 0
        var nextOffset: Int
        var received: Int = 0
        var end: Int { bufferOffset + desiredDataTransferLength }
    }

    /// ExpectedDataTransferLength.
    let expectedLength: Int
    /// The bytes kept and solicited: min(EDTL, the CDB's data-out length).
    let bufferedLength: Int
    /// The most unsolicited data (immediate + Data-Out) this task may carry.
    let unsolicitedLimit: Int
    /// Received pieces.
    private(set) var segments: [DataOutSegment] = []
    /// Bytes kept so far (never more than ``bufferedLength``).
    private(set) var received = 0
    /// Unsolicited Data-Out still expected (F bit not yet seen).
    private(set) var unsolicitedOpen: Bool
    private var unsolicitedNextOffset: Int
    private var unsolicitedNextDataSN: UInt32 = 0
    /// Next offset not yet solicited by an R2T.
    private var nextSolicitOffset: Int
    private var nextR2TSN: UInt32 = 0
    /// R2Ts in flight.
    private(set) var outstanding: [OutstandingR2T] = []
    /// R2Ts sent so far (ExpDataSN of the final response, RFC 7143 §11.4.8).
    private(set) var r2tCount: UInt32 = 0
    private let dataPDUInOrder: Bool
    /// Why the task's data went wrong; from then on Data-Out only closes sequences.
    private(set) var failure: SenseReason?

    /// Starts a write of `expectedLength` bytes whose command carried `immediate`
    /// and had the F bit `commandFinal`; `bufferLimit` is the CDB's data-out
    /// length when the SCSI layer knows it (nil: EDTL is all there is to go by).
    init(
        expectedLength: Int, bufferLimit: Int? = nil, immediate: ByteBuffer, commandFinal: Bool,
        parameters: SessionParameters
    ) {
        self.expectedLength = expectedLength
        self.bufferedLength = max(0, min(expectedLength, bufferLimit ?? expectedLength))
        self.dataPDUInOrder = parameters.dataPDUInOrder
        let immediateLength = immediate.readableBytes
        // RFC 7143 §13.10: with InitialR2T=No the initiator may send unsolicited
        // Data-Out up to FirstBurstLength; the command's F bit says whether any follows
        // (RFC 7143 §11.3.1).
        if parameters.initialR2T {
            unsolicitedLimit = immediateLength
            unsolicitedOpen = false
        } else {
            unsolicitedLimit = min(parameters.firstBurstLength, expectedLength)
            unsolicitedOpen = !commandFinal && immediateLength < unsolicitedLimit
        }
        unsolicitedNextOffset = immediateLength
        nextSolicitOffset = immediateLength
        store(offset: 0, bytes: immediate)
    }

    /// No unsolicited data is due any more: R2Ts may go out.
    var unsolicitedEnded: Bool { !unsolicitedOpen }
    /// Bytes still to solicit with R2Ts.
    var leftToSolicit: Int { max(0, bufferedLength - nextSolicitOffset) }

    /// All the bytes the target keeps are here and no unsolicited data is still due.
    var isComplete: Bool { received >= bufferedLength && !unsolicitedOpen }

    /// Takes one Data-Out PDU.
    mutating func receive(_ pdu: DataOutPDU) throws(Violation) {
        let offset = Int(pdu.bufferOffset)
        let length = pdu.dataSegment.readableBytes
        if pdu.targetTransferTag == 0xFFFF_FFFF {
            // RFC 7143 §11.7.4: unsolicited data carries TTT 0xffffffff, only
            // while the unsolicited phase lasts.
            guard unsolicitedOpen else { throw .unexpectedUnsolicitedData }
            // RFC 7143 §11.7.5: DataSN counts the PDUs of the unsolicited sequence from 0.
            guard pdu.dataSN == unsolicitedNextDataSN else {
                throw .dataSN(expected: unsolicitedNextDataSN, received: pdu.dataSN)
            }
            guard offset == unsolicitedNextOffset else {
                throw .bufferOffset(expected: unsolicitedNextOffset, received: offset)
            }
            // RFC 7143 §13.14: unsolicited data never exceeds FirstBurstLength.
            guard offset + length <= unsolicitedLimit else { throw .tooMuchData }
            unsolicitedNextDataSN &+= 1
            unsolicitedNextOffset += length
            store(offset: offset, bytes: pdu.dataSegment)
            if pdu.final || unsolicitedNextOffset >= unsolicitedLimit {
                unsolicitedOpen = false
                nextSolicitOffset = unsolicitedNextOffset
            }
            return
        }
        guard let index = outstanding.firstIndex(where: { $0.targetTransferTag == pdu.targetTransferTag }) else {
            throw .unknownTargetTransferTag(pdu.targetTransferTag)
        }
        var r2t = outstanding[index]
        // RFC 7143 §11.7.5: within an R2T's sequence DataSN starts at 0 and grows by one.
        guard pdu.dataSN == r2t.nextDataSN else { throw .dataSN(expected: r2t.nextDataSN, received: pdu.dataSN) }
        if dataPDUInOrder {
            // RFC 7143 §13.18: DataPDUInOrder=Yes means increasing, contiguous offsets.
            guard offset == r2t.nextOffset else { throw .bufferOffset(expected: r2t.nextOffset, received: offset) }
        } else {
            guard offset >= r2t.bufferOffset else { throw .bufferOffset(expected: r2t.bufferOffset, received: offset) }
        }
        // RFC 7143 §11.8.4: the data stays inside the R2T's window.
        guard offset + length <= r2t.end, r2t.received + length <= r2t.desiredDataTransferLength else {
            throw .tooMuchData
        }
        r2t.nextDataSN &+= 1
        r2t.nextOffset = offset + length
        r2t.received += length
        store(offset: offset, bytes: pdu.dataSegment)
        if r2t.received >= r2t.desiredDataTransferLength {
            outstanding.remove(at: index)
        } else {
            outstanding[index] = r2t
        }
    }

    /// The data of the task cannot be used (`pdu`, the one that broke it, is
    /// discarded): the task ends with `reason` once ``isDrained``.
    mutating func fail(_ reason: SenseReason, after pdu: DataOutPDU) {
        if failure == nil { failure = reason }
        drain(pdu)
    }

    /// Takes a Data-Out of a failed task: its data is discarded, its F bit ends
    /// its sequence. No R2T is sent any more, so only the open ones remain.
    mutating func drain(_ pdu: DataOutPDU) {
        guard pdu.final else { return }
        if pdu.targetTransferTag == 0xFFFF_FFFF {
            unsolicitedOpen = false
        } else {
            outstanding.removeAll { $0.targetTransferTag == pdu.targetTransferTag }
        }
    }

    /// A failed task has seen the end of every sequence it had open
    /// (RFC 7143 §7.8 b: "a Data PDU with the final bit set for all outstanding R2Ts").
    var isDrained: Bool { failure != nil && !unsolicitedOpen && outstanding.isEmpty }

    /// Keeps the part of `bytes` below ``bufferedLength``; the rest is dropped here.
    private mutating func store(offset: Int, bytes: ByteBuffer) {
        let kept = min(bytes.readableBytes, bufferedLength - offset)
        guard kept > 0 else { return }
        let slice = kept == bytes.readableBytes ? bytes : bytes.getSlice(at: bytes.readerIndex, length: kept)!
        segments.append(DataOutSegment(offset: offset, bytes: slice))
        received += kept
    }

    /// R2Ts to send now: as many as MaxOutstandingR2T allows, each at most
    /// MaxBurstLength (RFC 7143 §13.13, §13.17). `tags` hands out Target Transfer Tags.
    /// They are the last ones of `outstanding`, so no list is built for them.
    mutating func nextR2Ts(parameters: SessionParameters, tags: inout TargetTransferTags) -> ArraySlice<OutstandingR2T> {
        let first = outstanding.endIndex
        guard !unsolicitedOpen else { return outstanding[first...] }
        // SAM-5 §5.4.3: never solicit past what the CDB transfers (bufferedLength ≤ EDTL).
        while outstanding.count < parameters.maxOutstandingR2T, nextSolicitOffset < bufferedLength {
            let length = min(parameters.maxBurstLength, bufferedLength - nextSolicitOffset)
            let tag = tags.take()
            let r2t = OutstandingR2T(
                targetTransferTag: tag, r2tSN: nextR2TSN, bufferOffset: nextSolicitOffset,
                desiredDataTransferLength: length, nextOffset: nextSolicitOffset)
            outstanding.append(r2t)
            nextR2TSN &+= 1
            r2tCount &+= 1
            nextSolicitOffset += length
        }
        return outstanding[first...]
    }
}

/// Hands out the connection's Target Transfer Tags (R2Ts and NOP-In pings):
/// from 1, never the reserved 0xffffffff (RFC 7143 §11.7.4, §11.19).
struct TargetTransferTags: Sendable {
    private var next: UInt32 = 1

    mutating func take() -> UInt32 {
        let tag = next
        next &+= 1
        if next == 0xFFFF_FFFF { next = 1 }
        return tag
    }
}
