import BlockStorage
import SCSIWire

// The SPC/SBC executor of one logical unit. Parsing already happened
// (SCSIWire); here every range is checked against the device and the
// command runs. Failures are thrown as SenseData and become CHECK CONDITION.

extension LogicalUnit {
    /// Runs a parsed command. Unit attentions were handled by the caller.
    func execute(_ operation: CDBCommand, _ command: SCSICommand) async -> SCSIResponse {
        // SBC-3 §5.2 / SBC-4 §4.29: the read-modify-write commands are atomic with respect
        // to every other command on the logical unit, so they hold the medium exclusively.
        let exclusive: Bool
        switch operation {
        case .compareAndWrite, .orWrite, .writeAtomic, .sanitize: exclusive = true
        default: exclusive = false
        }
        await mediumLock.lock(exclusive: exclusive)
        defer { mediumLock.unlock(exclusive: exclusive) }
        do {
            return try await run(operation, command)
        } catch {
            return SCSIResponse(status: .checkCondition, sense: error.bytes)
        }
    }

    /// Commits a change of the shared context (``LogicalUnitContext/change(sparing:_:)``)
    /// made by `task` (nil for task management and nexus loss), which its aborts
    /// spare; a failure to commit is the retryable NOT READY, ASYMMETRIC ACCESS
    /// STATE TRANSITION (SPC-4 §5.16.2.6: this path cannot process the command
    /// now, a retry here or on another path is expected to succeed — a node
    /// without the store's quorum), and sense data from `decide` is passed on.
    func changeContext<R: Sendable>(
        by task: TaskKey?, _ decide: @Sendable (inout SharedLUNState) throws -> (R, [ContextEffect])
    ) async throws(SenseData) -> R {
        do { return try await context.change(sparing: task, decide) } catch let sense as SenseData { throw sense } catch {
            throw SenseData(.asymmetricAccessStateTransition)
        }
    }

    /// SPC-2 RESERVE (`reserve`) or RELEASE, decided on the LU's shared state.
    func spc2Reservation(reserve: Bool, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        let nexus = command.nexus
        let granted = try await changeContext(by: command.taskKey) { state in
            let decision =
                reserve
                ? SPC2Reservation.reserve(nexus, holder: state.spc2Holder, persistent: state.persistent)
                : SPC2Reservation.release(nexus, holder: state.spc2Holder, persistent: state.persistent)
            state.spc2Holder = decision.holder
            return (decision.granted, [])
        }
        return granted ? .good : SCSIResponse(status: .reservationConflict)
    }

    /// SPC-2 §5.5.1: an I_T nexus loss releases the reservation the nexus
    /// holds. Returns false when the release could not be committed now.
    @discardableResult
    func releaseSPC2Reservation(heldBy nexus: ITNexus) async -> Bool {
        guard context.shared().spc2Holder?.names(nexus) == true else { return true }
        do {
            try await changeContext(by: nil) { state in
                if state.spc2Holder?.names(nexus) == true { state.spc2Holder = nil }
                return ((), [])
            }
            return true
        } catch {
            return false
        }
    }

    /// A logical unit reset's effects on the LU (SAM-5 §6.3.3): every task
    /// aborted and the SPC-2 reservation released on every node (SPC-2
    /// §5.5.1), and BUS DEVICE RESET FUNCTION OCCURRED for every nexus on
    /// every node. Without the store the reset still happens here.
    func reset() async -> Bool {
        let effects: [ContextEffect] = [
            .abortAll(clearedBy: nil), .unitAttention(.busDeviceResetFunctionOccurred, except: nil),
        ]
        do {
            try await changeContext(by: nil) { state in
                state.spc2Holder = nil
                return ((), effects)
            }
            return true
        } catch {
            await context.establishUnitAttention(.busDeviceResetFunctionOccurred, scope: .allNexuses)
            return false
        }
    }

    private func run(_ operation: CDBCommand, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        switch operation {
        case .testUnitReady, .preventAllowMediumRemoval:
            // SBC-3 §5.5: PREVENT ALLOW MEDIUM REMOVAL on a non-removable medium has nothing to prevent.
            return .good
        case .startStopUnit(_, let powerCondition, let loadEject, _):
            // SBC-3 §5.25: RMB = 0, there is no medium to load or eject → INVALID FIELD IN CDB.
            if loadEject && powerCondition == 0 { throw SenseData.invalidField(byte: 4, bit: 1) }
            return .good
        case .read(let t):
            return try await read(t, into: command.dataInAllocator)
        case .write(let t):
            return try await write(t, command)
        case .inquiry(let q):
            return .data(try inquiry(q, nexus: command.nexus), allocationLength: Int(q.allocationLength))
        case .requestSense(let descriptorFormat, let allocationLength):
            // SPC-4 §6.39: DESC selects descriptor-format sense data.
            let sense =
                sanitizeInProgress
                ? SenseData(.sanitizeInProgress)
                : SenseData(context.unitAttention(for: command.nexus, consume: true) ?? .noSense)
            return .data(descriptorFormat ? sense.descriptorBytes : sense.bytes, allocationLength: Int(allocationLength))
        case .readCapacity10:
            return .data(
                ReadCapacityData.ten(blockCount: geometry.blockCount, blockSize: geometry.blockSize),
                allocationLength: 8)
        case .readCapacity16(let allocationLength):
            let data = ReadCapacityData.sixteen(
                blockCount: geometry.blockCount, blockSize: geometry.blockSize, thin: thin,
                logicalBlocksPerPhysicalBlockExponent: limits.logicalBlocksPerPhysicalBlockExponent)
            return .data(data, allocationLength: Int(allocationLength))
        case .verify(let v):
            return try await verify(v, command)
        case .writeAndVerify(let v):
            return try await writeAndVerify(v, command)
        case .synchronizeCache(let r, _):
            // SBC-3 §5.22: the range must lie inside the medium (0 blocks = to the end).
            try checkRange(r.lba, UInt64(r.blockCount))
            do { try await device.flush() } catch { throw Self.sense(for: error, writing: true) }
            return .good
        case .prefetch(let r, _):
            try checkRange(r.lba, UInt64(r.blockCount))
            // SBC-3 §5.6: the blocks "fit in the cache" (there is nothing to load) → CONDITION MET.
            return SCSIResponse(status: .conditionMet)
        case .modeSense(let m):
            let pages = context.modePages()
            let data = try ModeParameters.sense(
                m, current: pages, blockCount: geometry.blockCount, blockSize: geometry.blockSize,
                writeProtected: configuration.writeProtected || pages.softwareWriteProtect)
            return .data(data, allocationLength: Int(m.allocationLength))
        case .modeSelect(let m):
            return try await modeSelect(m, command)
        case .reportSupportedOperationCodes(let r):
            let data =
                r.reportingOptions == 0
                ? CommandDescriptor.reportAll(rctd: r.rctd, table: offeredCommands)
                : try CommandDescriptor.reportOne(r, table: offeredCommands)
            return .data(data, allocationLength: Int(r.allocationLength))
        case .writeSame(let w):
            return try await writeSame(w, command)
        case .unmap(let length):
            return try await unmap(parameterListLength: Int(length), command)
        case .reserve:
            // SPC-2 §7.21: held by another nexus → RESERVATION CONFLICT.
            return try await spc2Reservation(reserve: true, command)
        case .release:
            return try await spc2Reservation(reserve: false, command)
        case .compareAndWrite(let t):
            return try await compareAndWrite(t, command)
        case .persistentReserveIn(let action, let allocationLength):
            let state = context.shared().persistent
            return .data(state.reportIn(action), allocationLength: Int(allocationLength))
        case .persistentReserveOut(let out):
            return try await persistentReserveOut(out, command)
        case .orWrite(let t):
            return try await orWrite(t, command)
        case .writeAtomic(let t):
            return try await writeAtomic(t, command)
        case .readDefectData(let r):
            return .data(ReadDefectDataReply.empty(r), allocationLength: Int(r.allocationLength))
        case .sanitize(let s):
            return try await sanitize(s, command)
        case .getLBAStatus(let lba, let allocationLength):
            return try await getLBAStatus(lba: lba, allocationLength: allocationLength)
        case .reportLUNs, .extendedCopy, .receiveCopyResults, .reportTargetPortGroups:
            // Answered at the target level by SCSITargetDevice.
            throw SenseData(.internalTargetFailure)
        }
    }

    // MARK: - Inquiry

    func inquiry(_ q: Inquiry, nexus: ITNexus) throws(SenseData) -> [UInt8] {
        guard q.evpd else { return InquiryData.standard(identity) }
        let port = PortIdentity(
            targetPortName: nexus.targetPortName, targetName: nexus.targetName,
            relativeTargetPortIdentifier: nexus.relativeTargetPortIdentifier, targetPortGroup: nexus.targetPortGroup)
        switch q.pageCode {
        case 0x00: return InquiryData.supportedPages()
        case 0x80: return InquiryData.unitSerialNumber(identity)
        case 0x83: return InquiryData.deviceIdentification(identity, port: port)
        case 0x8F: return InquiryData.thirdPartyCopy()
        case 0xB0: return InquiryData.blockLimits(limits)
        case 0xB1: return InquiryData.blockDeviceCharacteristics(blockErase: thin)
        case 0xB2: return InquiryData.logicalBlockProvisioning(limits)
        // SPC-4 §6.6.1: an unsupported VPD page → INVALID FIELD IN CDB.
        default: throw SenseData.invalidField(byte: 2)
        }
    }

    // MARK: - Block I/O

    /// SBC-3 §4.11: a write-protected medium → DATA PROTECT, WRITE PROTECTED
    /// (configured read-only) or SOFTWARE WRITE PROTECTED (control mode page SWP).
    /// Returns the mode pages it read, so a caller reads them once.
    @discardableResult
    func checkWritable() throws(SenseData) -> ModePageValues {
        if configuration.writeProtected { throw SenseData(.writeProtected) }
        let pages = context.modePages()
        if pages.softwareWriteProtect { throw SenseData(.softwareWriteProtected) }
        return pages
    }

    /// SBC-3 §4.5: LBA + count must not exceed the capacity; computed without overflow at 2^64-1.
    func checkRange(_ lba: UInt64, _ count: UInt64) throws(SenseData) {
        let (end, overflow) = lba.addingReportingOverflow(count)
        if overflow || end > geometry.blockCount { throw SenseData(.lbaOutOfRange) }
    }

    func checkTransferLength(_ blocks: UInt32) throws(SenseData) {
        // SBC-3 §6.5.3: more than MAXIMUM TRANSFER LENGTH → INVALID FIELD IN CDB.
        if blocks > maximumTransferBlocks { throw SenseData(.invalidFieldInCDB) }
    }

    /// The device reads straight into a buffer from `allocator` when there is one
    /// (the transport's send buffer: no copy between device and wire).
    func read(_ t: BlockTransfer, into allocator: (any IOBufferAllocator)?) async throws(SenseData) -> SCSIResponse {
        try checkRange(t.lba, UInt64(t.transferLength))
        guard t.transferLength > 0 else { return .good }  // SBC-3 §5.9: zero blocks is not an error
        try checkTransferLength(t.transferLength)
        let count = Int(t.transferLength) * Int(geometry.blockSize)
        // A transport that sends memory as it is can take the device's own
        // cached pages: the data reaches the socket in one copy. The status
        // goes out after the data on the same connection, so a host that has
        // seen the command complete has had every byte copied out first.
        if let lender, count > LentReads.lendsReadsAbove, let allocator, allocator.sendsLentMemory,
            let lent = await lender.mappedRead(lba: t.lba, blockCount: t.transferLength)
        {
            return SCSIResponse(status: .good, dataIn: lent, dataInLength: count)
        }
        let buffer = allocator?.buffer(count: count) ?? IOBuffer(count: count)
        do {
            try await device.read(lba: t.lba, blockCount: t.transferLength, into: buffer, offset: 0)
        } catch {
            throw Self.sense(for: error, writing: false)
        }
        return SCSIResponse(status: .good, dataIn: buffer, dataInLength: count)
    }

    /// How many whole blocks of Data-Out the command may use. With less data
    /// than the CDB asks for (iSCSI EDTL < SPDTL), only the data received is
    /// written (FCP-4 §9.5.8 a, what libiscsi's write residual tests check);
    /// a partial block cannot be written → INVALID FIELD IN INFORMATION UNIT.
    func dataOutBlocks(needed: UInt32, _ command: SCSICommand) throws(SenseData) -> UInt32 {
        let blockSize = Int(geometry.blockSize)
        let available = command.receivedDataOutLength
        if available >= Int(needed) * blockSize { return needed }
        if available % blockSize != 0 { throw SenseData(.invalidFieldInInformationUnit) }
        return UInt32(available / blockSize)
    }

    func write(_ t: BlockTransfer, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        // SBC-3 §4.11: a write-protected medium → DATA PROTECT, WRITE PROTECTED.
        let pages = try checkWritable()
        try checkRange(t.lba, UInt64(t.transferLength))
        guard t.transferLength > 0 else { return .good }
        try checkTransferLength(t.transferLength)
        let blocks = try dataOutBlocks(needed: t.transferLength, command)
        guard blocks > 0, let data = command.dataOut else { return .good }
        // SBC-3 §6.4.5: with WCE = 0 every write is write-through.
        let fua = t.fua || !pages.writeCacheEnabled
        do {
            try await device.write(lba: t.lba, blockCount: blocks, from: data, offset: 0, fua: fua)
        } catch {
            throw Self.sense(for: error, writing: true)
        }
        return .good
    }

    func verify(_ v: Verify, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkRange(v.lba, UInt64(v.verificationLength))
        guard v.verificationLength > 0 else { return .good }
        try checkTransferLength(v.verificationLength)
        let blockSize = Int(geometry.blockSize)
        let medium = IOBuffer(count: Int(v.verificationLength) * blockSize)
        do {
            try await device.read(lba: v.lba, blockCount: v.verificationLength, into: medium, offset: 0)
        } catch {
            throw Self.sense(for: error, writing: false)
        }
        switch v.byteCheck {
        case 1:
            // SBC-3 §5.29: compare the Data-Out buffer with the medium.
            let blocks = try dataOutBlocks(needed: v.verificationLength, command)
            guard blocks > 0, let data = command.dataOut else { return .good }
            try Self.compare(medium, data, length: Int(blocks) * blockSize, pattern: false, blockSize: blockSize)
        case 3:
            // One block of Data-Out compared against every block.
            guard let data = command.dataOut, command.dataOutLength >= blockSize else {
                throw SenseData(.invalidFieldInInformationUnit)
            }
            try Self.compare(medium, data, length: medium.count, pattern: true, blockSize: blockSize)
        default:
            break  // BYTCHK 0: a medium verification, done by reading
        }
        return .good
    }

    /// Byte-compares `medium` with `data` (or `data`'s first block repeated);
    /// the first difference → MISCOMPARE with its offset in INFORMATION (SBC-3 §5.29).
    static func compare(_ medium: IOBuffer, _ data: IOBuffer, length: Int, pattern: Bool, blockSize: Int)
        throws(SenseData)
    {
        let m = UnsafeRawBufferPointer(medium.bytes)
        let d = UnsafeRawBufferPointer(data.bytes)
        for i in 0..<length where m[i] != d[pattern ? i % blockSize : i] {
            throw SenseData(.miscompareDuringVerifyOperation, information: UInt32(truncatingIfNeeded: i))
        }
    }

    func writeAndVerify(_ v: Verify, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        try checkRange(v.lba, UInt64(v.verificationLength))
        guard v.verificationLength > 0 else { return .good }
        try checkTransferLength(v.verificationLength)
        let blocks = try dataOutBlocks(needed: v.verificationLength, command)
        guard blocks > 0, let data = command.dataOut else { return .good }
        do {
            try await device.write(lba: v.lba, blockCount: blocks, from: data, offset: 0, fua: true)
        } catch {
            throw Self.sense(for: error, writing: true)
        }
        if v.byteCheck != 0 {
            // SBC-3 §5.37: read back and compare what was written.
            let blockSize = Int(geometry.blockSize)
            let medium = IOBuffer(count: Int(blocks) * blockSize)
            do {
                try await device.read(lba: v.lba, blockCount: blocks, into: medium, offset: 0)
            } catch {
                throw Self.sense(for: error, writing: false)
            }
            try Self.compare(medium, data, length: medium.count, pattern: false, blockSize: blockSize)
        }
        return .good
    }

    func writeSame(_ w: WriteSame, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        if w.anchor { throw SenseData.invalidField(byte: 1, bit: 4) }
        if w.unmap && !thin { throw SenseData.invalidField(byte: 1, bit: 3) }
        // SBC-3 §5.42: NUMBER OF LOGICAL BLOCKS 0 (WSNZ = 0) means "to the last LBA".
        if w.lba > geometry.blockCount { throw SenseData(.lbaOutOfRange) }
        let count = w.blockCount == 0 ? geometry.blockCount - w.lba : UInt64(w.blockCount)
        try checkRange(w.lba, count)
        if count > limits.maximumWriteSameLength { throw SenseData.invalidField(byte: w.noDataOut ? 10 : 7) }
        guard count > 0 else { return .good }
        let blockSize = Int(geometry.blockSize)
        let pattern = IOBuffer(count: blockSize, zeroed: true)
        if !w.noDataOut {
            // SBC-3 §5.41: exactly one block of Data-Out; more or less is an error
            // (iscsi-test-cu SCSI.WriteSame10.InvalidDataOutSize).
            guard let data = command.dataOut, command.dataOutLength == blockSize,
                command.expectedDataTransferLength == 0 || Int(command.expectedDataTransferLength) == blockSize
            else {
                throw SenseData(.invalidFieldInInformationUnit)
            }
            pattern.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: data.bytes[0..<blockSize]))
        }
        // SBC-3 §5.42 / §4.7.3.4: UNMAP = 1 makes the command an unmap request for the range
        // (what LIO does and libiscsi WriteSame10.UnmapUntilEnd checks: the blocks then read as
        // zeros, LBPRZ = 1, whatever the Data-Out block held).
        if w.unmap {
            do { try await device.unmap(lba: w.lba, blockCount: count) } catch {
                throw Self.sense(for: error, writing: true)
            }
            return .good
        }
        let chunkBlocks = UInt64(min(maximumTransferBlocks, 256))
        let chunk = IOBuffer(count: Int(chunkBlocks) * blockSize)
        for k in 0..<Int(chunkBlocks) {
            (chunk.baseAddress + k * blockSize).copyMemory(from: pattern.baseAddress, byteCount: blockSize)
        }
        var lba = w.lba
        var remaining = count
        while remaining > 0 {
            let n = min(remaining, chunkBlocks)
            do {
                try await device.write(lba: lba, blockCount: UInt32(n), from: chunk, offset: 0, fua: false)
            } catch {
                throw Self.sense(for: error, writing: true)
            }
            lba += n
            remaining -= n
        }
        return .good
    }

    func unmap(parameterListLength: Int, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        guard thin else { throw SenseData(.invalidCommandOperationCode) }
        // SBC-3 §5.28: PARAMETER LIST LENGTH 0 is not an error.
        guard parameterListLength > 0 else { return .good }
        let available = min(parameterListLength, command.receivedDataOutLength)
        guard available >= 8, let data = command.dataOut else { throw SenseData(.parameterListLengthError) }
        let descriptors = try UnmapParameterList.decode(
            data.array(0..<available), maximumDescriptors: Int(LogicalUnit.maximumUnmapDescriptors))
        var ranges: [(UInt64, UInt64)] = []
        for d in descriptors {
            try checkRange(d.lba, UInt64(d.blockCount))
            if d.blockCount > 0 { ranges.append((d.lba, UInt64(d.blockCount))) }
        }
        for (lba, count) in ranges {
            do { try await device.unmap(lba: lba, blockCount: count) } catch {
                throw Self.sense(for: error, writing: true)
            }
        }
        return .good
    }

    /// COMPARE AND WRITE (SBC-3 §5.2): compares the first half of Data-Out with
    /// the medium and writes the second half; ``execute(_:_:)`` holds the medium
    /// exclusively, so it is atomic with respect to every command on the unit.
    func compareAndWrite(_ t: BlockTransfer, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        try checkRange(t.lba, UInt64(t.transferLength))
        if t.transferLength == 0 {
            // SBC-3 §5.2: zero blocks is not an error, but Data-Out sent with it does not fit the
            // CDB (libiscsi sends 256 blocks as 0 and expects INVALID FIELD IN CDB).
            if command.dataOutLength > 0 || command.expectedDataTransferLength > 0 {
                throw SenseData.invalidField(byte: 13)
            }
            return .good
        }
        // SBC-3 §5.2: NUMBER OF LOGICAL BLOCKS above MAXIMUM COMPARE AND WRITE LENGTH → INVALID FIELD IN CDB.
        if t.transferLength > UInt32(limits.maximumCompareAndWriteLength) { throw SenseData.invalidField(byte: 13) }
        let blockSize = Int(geometry.blockSize)
        let half = Int(t.transferLength) * blockSize
        guard let data = command.dataOut, command.dataOutLength == 2 * half else {
            throw SenseData(.invalidFieldInInformationUnit)
        }
        let outcome: CompareAndWriteOutcome
        do {
            outcome = try await device.compareAndWrite(
                lba: t.lba, blockCount: t.transferLength, buffer: data, offset: 0, fua: t.fua)
        } catch {
            throw Self.sense(for: error, writing: true)
        }
        // SBC-3 §5.2: a miscompare → MISCOMPARE with the offset of the first differing byte.
        if case .miscompare(let offset) = outcome {
            throw SenseData(.miscompareDuringVerifyOperation, information: UInt32(truncatingIfNeeded: offset))
        }
        return .good
    }

    func persistentReserveOut(_ out: PersistentReserveOut, _ command: SCSICommand) async throws(SenseData)
        -> SCSIResponse
    {
        // SPC-4 §6.16.3: the basic list is 24 bytes; SPEC_I_PT and REGISTER AND MOVE lists are longer.
        let length = Int(out.parameterListLength)
        guard length >= 24, length <= 65536, let data = command.dataOut,
            min(command.dataOutLength, data.count) >= length
        else {
            throw SenseData(.parameterListLengthError)
        }
        let parameters = try PersistentReserveOutParameters.decode(
            data.array(0..<length), serviceAction: out.serviceAction)
        let nexus = command.nexus
        let outcome = try await changeContext(by: command.taskKey) { state in
            let before = state
            let outcome = state.persistent.apply(out, parameters, from: nexus)
            guard outcome.status == .good else {
                state = before
                return (outcome, [])
            }
            // SPC-4 §5.13: the unit attentions go to the nexuses the affected registrations stand
            // for, on whichever node they are, never to the sender; PREEMPT AND ABORT also aborts
            // their tasks (§5.13.11.2.6) on every node before GOOD. Every change is saved, not
            // only APTPL ones: in a cluster a node restart is not the LU's power loss.
            var effects: [ContextEffect] = outcome.unitAttentions.map {
                .registrantUnitAttention($0.reason, port: $0.port, except: NexusName(nexus))
            }
            if !outcome.aborted.isEmpty { effects.append(.abortRegistrants(outcome.aborted)) }
            return (outcome, effects)
        }
        switch outcome.status {
        case .good: return .good
        case .reservationConflict: return SCSIResponse(status: .reservationConflict)
        case .checkCondition(let sense): throw sense
        }
    }

    // MARK: - Mode select

    func modeSelect(_ m: ModeSelect, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        let length = Int(m.parameterListLength)
        let available = min(length, command.receivedDataOutLength)
        if available < length { throw SenseData(.parameterListLengthError) }
        let parameters = command.dataOut?.array(0..<available) ?? []
        let nexus = command.nexus
        let blockSize = geometry.blockSize
        try await changeContext(by: command.taskKey) { state in
            let updated = try ModeParameters.select(
                m, parameters: parameters, current: state.modePages, blockSize: blockSize)
            guard updated != state.modePages else { return ((), []) }
            state.modePages = updated
            // SPC-4 §6.11: the other I_T nexuses, on every node, get MODE PARAMETERS CHANGED.
            return ((), [.unitAttention(.modeParametersChanged, except: NexusName(nexus))])
        }
        return .good
    }

    // MARK: - Errors

    /// Maps a device failure to sense data: medium errors as MEDIUM ERROR.
    static func sense(for error: BlockDeviceError, writing: Bool) -> SenseData {
        switch error.code {
        case .ioError: SenseData(writing ? .writeError : .unrecoveredReadError)
        case .readOnly: SenseData(.writeProtected)
        case .noSpace: SenseData(.spaceAllocationFailedWriteProtect)
        case .outOfRange: SenseData(.lbaOutOfRange)
        // A replica's node did not answer in time: retryable, as a short transition
        // (SPC-4 §5.16.2.6), so the host retries here or on another path.
        case .unavailable: SenseData(.asymmetricAccessStateTransition)
        default: SenseData(.internalTargetFailure)
        }
    }
}

extension SCSICommand {
    /// The bytes of Data-Out actually received: 0 without a buffer, never more than the buffer holds.
    var receivedDataOutLength: Int { dataOut.map { min(dataOutLength, $0.count) } ?? 0 }
}

extension SCSIResponse {
    /// GOOD with no data.
    static var good: SCSIResponse { SCSIResponse(status: .good) }

    /// GOOD with `bytes` cut to the allocation length (SPC-4 §4.2.5.6).
    static func data(_ bytes: [UInt8], allocationLength: Int) -> SCSIResponse {
        let n = min(bytes.count, max(allocationLength, 0))
        guard n > 0 else { return SCSIResponse(status: .good, dataIn: nil, dataInLength: 0) }
        return SCSIResponse(status: .good, dataIn: IOBuffer(bytes: bytes[0..<n]), dataInLength: n)
    }
}
