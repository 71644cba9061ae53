import BlockStorage
import SCSIWire
import Synchronization

/// Completed EXTENDED COPY results per (nexus, list identifier), for RECEIVE
/// COPY RESULTS (SPC-4 §6.18; SNLID = 1: list identifiers are per nexus).
final class CopyResultsTable: Sendable {
    struct Key: Hashable {
        var nexus: ITNexus
        var listIdentifier: UInt8
    }
    struct Result {
        var succeeded: Bool
        var segmentsProcessed: UInt16
        var transferredBlocks: UInt32
    }
    private let results = Mutex<[Key: Result]>([:])
    /// Bound on held results (oldest dropped first is not needed: one per list id per nexus).
    static let maximumHeld = 4096

    func record(_ key: Key, _ result: Result) {
        results.withLock { r in
            if r.count >= Self.maximumHeld { r.removeAll() }
            r[key] = result
        }
    }

    func result(_ key: Key) -> Result? { results.withLock { $0[key] } }
}

extension SCSITargetDevice {
    /// EXTENDED COPY (LID1) (SPC-4 §6.3): block-to-block segments between the
    /// logical units of this target, each CSCD named by its NAA designator.
    func extendedCopy(parameterListLength: Int, _ command: SCSICommand, unit: LogicalUnit) async -> SCSIResponse {
        // SPC-4 §6.3.1: PARAMETER LIST LENGTH 0 is not an error; nothing is copied.
        guard parameterListLength > 0 else { return .good }
        let available = command.receivedDataOutLength
        let bytes = command.dataOut?.array(0..<min(available, parameterListLength)) ?? []
        guard bytes.count == parameterListLength else {
            return Self.checkCondition(.parameterListLengthError)
        }
        let parameters: ExtendedCopyParameters
        do { parameters = try ExtendedCopyParameters.decode(bytes) } catch {
            return SCSIResponse(status: .checkCondition, sense: error.bytes)
        }
        var processed: UInt16 = 0
        var transferred: UInt32 = 0
        var failure: SenseData?
        for segment in parameters.segments {
            do {
                transferred &+= try await copy(segment, targets: parameters.targets, nexus: command.nexus)
                processed += 1
            } catch {
                failure = error
                break
            }
        }
        if parameters.holdsResults {
            copyResults.record(
                CopyResultsTable.Key(nexus: command.nexus, listIdentifier: parameters.listIdentifier),
                CopyResultsTable.Result(
                    succeeded: failure == nil, segmentsProcessed: processed, transferredBlocks: transferred))
        }
        if let failure { return SCSIResponse(status: .checkCondition, sense: failure.bytes) }
        return .good
    }

    /// The logical unit a CSCD descriptor names: an NAA designator equal to one of ours.
    func unit(for target: CopyTargetDescriptor) -> LogicalUnit? {
        guard target.designatorType == 3 else { return nil }  // NAA
        return logicalUnits.values.first { $0.configuration.naaIdentifier == target.designator }
    }

    /// One block→block segment; returns the destination blocks written.
    private func copy(_ s: BlockCopySegment, targets: [CopyTargetDescriptor], nexus: ITNexus) async throws(SenseData)
        -> UInt32
    {
        // SPC-4 §6.3.7.1: an index beyond the CSCD list, or a CSCD we cannot reach → COPY ABORTED.
        guard Int(s.sourceIndex) < targets.count, Int(s.destinationIndex) < targets.count,
            let source = unit(for: targets[Int(s.sourceIndex)]),
            let destination = unit(for: targets[Int(s.destinationIndex)])
        else {
            throw SenseData(.copyTargetDeviceNotReachable)
        }
        let blockSize = source.geometry.blockSize
        // The CSCD's DISK BLOCK LENGTH must be the unit's; copies between block sizes are not offered.
        guard destination.geometry.blockSize == blockSize,
            targets[Int(s.sourceIndex)].blockLength == blockSize,
            targets[Int(s.destinationIndex)].blockLength == blockSize
        else {
            throw SenseData(.copyAborted)
        }
        try destination.checkWritable()
        // SPC-4 §5.13.1: the copy manager accesses the units for the initiator; reservations apply.
        let sourceState = source.context.shared().persistent
        let destinationState = destination.context.shared().persistent
        if sourceState.conflicts(nexus, .readAccess) || destinationState.conflicts(nexus, .writeAccess) {
            throw SenseData(.copyAborted)
        }
        let count = UInt64(s.blockCount)
        if UInt64(s.blockCount) * UInt64(blockSize) > UInt64(ExtendedCopyLimits.maximumSegmentLength) {
            throw SenseData(.copyAborted)
        }
        // Ranges are checked without overflow at 2^64-1 → COPY ABORTED.
        let (srcEnd, o1) = s.sourceLBA.addingReportingOverflow(count)
        let (dstEnd, o2) = s.destinationLBA.addingReportingOverflow(count)
        if o1 || o2 || srcEnd > source.geometry.blockCount || dstEnd > destination.geometry.blockCount {
            throw SenseData(.copyAborted)
        }
        let chunkBlocks = UInt64(max(1, min(source.maximumTransferBlocks, 2048)))
        let buffer = IOBuffer(count: Int(chunkBlocks) * Int(blockSize))
        var done: UInt64 = 0
        while done < count {
            let n = UInt32(min(chunkBlocks, count - done))
            do {
                try await source.device.read(lba: s.sourceLBA + done, blockCount: n, into: buffer, offset: 0)
                try await destination.device.write(
                    lba: s.destinationLBA + done, blockCount: n, from: buffer, offset: 0, fua: false)
            } catch {
                throw SenseData(.copyAborted)
            }
            done += UInt64(n)
        }
        return UInt32(count)
    }

    /// RECEIVE COPY RESULTS (SPC-4 §6.18).
    func receiveCopyResults(
        _ action: ReceiveCopyResultsAction, listIdentifier: UInt8, allocationLength: UInt32, _ command: SCSICommand
    ) -> SCSIResponse {
        let data: [UInt8]
        switch action {
        case .operatingParameters:
            data = CopyResultsData.operatingParameters()
        case .copyStatus:
            // SPC-4 §6.18.2: no held result for this list identifier → INVALID FIELD IN CDB.
            guard let r = copyResults.result(.init(nexus: command.nexus, listIdentifier: listIdentifier)) else {
                return SCSIResponse(status: .checkCondition, sense: SenseData.invalidField(byte: 2).bytes)
            }
            data = CopyResultsData.copyStatus(
                succeeded: r.succeeded, segmentsProcessed: r.segmentsProcessed, transferredBlocks: r.transferredBlocks)
        case .receiveData, .failedSegmentDetails:
            guard copyResults.result(.init(nexus: command.nexus, listIdentifier: listIdentifier)) != nil else {
                return SCSIResponse(status: .checkCondition, sense: SenseData.invalidField(byte: 2).bytes)
            }
            data = CopyResultsData.empty(action)
        }
        return .data(data, allocationLength: Int(allocationLength))
    }
}
