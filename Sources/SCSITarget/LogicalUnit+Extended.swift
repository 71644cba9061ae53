import BlockStorage
import SCSIWire

// ORWRITE, WRITE ATOMIC, SANITIZE and GET LBA STATUS (SBC-3). The caller
// (`execute`) holds the medium lock exclusively for the first three.

extension LogicalUnit {
    /// ORWRITE (16) (SBC-3 §5.4): medium = medium OR Data-Out.
    func orWrite(_ t: BlockTransfer, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        try checkRange(t.lba, UInt64(t.transferLength))
        guard t.transferLength > 0 else { return .good }
        try checkTransferLength(t.transferLength)
        let blocks = try dataOutBlocks(needed: t.transferLength, command)
        guard blocks > 0, let data = command.dataOut else { return .good }
        let length = Int(blocks) * Int(geometry.blockSize)
        let medium = IOBuffer(count: length)
        do { try await device.read(lba: t.lba, blockCount: blocks, into: medium, offset: 0) } catch {
            throw Self.sense(for: error, writing: false)
        }
        let m = medium.bytes
        let d = UnsafeRawBufferPointer(data.bytes)
        for i in 0..<length { m[i] |= d[i] }
        do { try await device.write(lba: t.lba, blockCount: blocks, from: medium, offset: 0, fua: t.fua) } catch {
            throw Self.sense(for: error, writing: true)
        }
        return .good
    }

    /// WRITE ATOMIC (16) (SBC-4 §5.48): all or nothing, and no other command sees part of it.
    func writeAtomic(_ t: BlockTransfer, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        try checkRange(t.lba, UInt64(t.transferLength))
        guard t.transferLength > 0 else { return .good }
        // SBC-4 §5.48: above MAXIMUM ATOMIC TRANSFER LENGTH → INVALID FIELD IN CDB.
        if t.transferLength > limits.maximumAtomicTransferLength { throw SenseData.invalidField(byte: 12) }
        let blockSize = Int(geometry.blockSize)
        guard let data = command.dataOut, min(command.dataOutLength, data.count) >= Int(t.transferLength) * blockSize
        else {
            throw SenseData(.invalidFieldInInformationUnit)
        }
        do {
            try await device.write(lba: t.lba, blockCount: t.transferLength, from: data, offset: 0, fua: t.fua)
        } catch {
            throw Self.sense(for: error, writing: true)
        }
        return .good
    }

    /// SANITIZE (SBC-3 §5.21): OVERWRITE writes the pattern over the whole
    /// medium in the background (paced, so it survives task management and
    /// logout, SBC-3 §4.11); BLOCK ERASE deallocates every block (thin units
    /// only); EXIT FAILURE MODE leaves the failure mode a failed sanitize left.
    /// Returns once the sanitize has started; the target device waits for it
    /// unless IMMED is set.
    func sanitize(_ s: Sanitize, _ command: SCSICommand) async throws(SenseData) -> SCSIResponse {
        try checkWritable()
        let blockSize = Int(geometry.blockSize)
        switch s.serviceAction {
        case .exitFailureMode:
            // SBC-3 §5.21.5: PARAMETER LIST LENGTH must be zero.
            if s.parameterListLength != 0 { throw SenseData.invalidField(byte: 7) }
            sanitizeState.withLock { $0.failed = false }
            return .good
        case .blockErase:
            // Not offered on a thick unit (RSOC agrees): INVALID FIELD IN CDB on the service action.
            guard thin else { throw SenseData.invalidField(byte: 1, bit: 4) }
            // SBC-3 §5.21.4: PARAMETER LIST LENGTH must be zero.
            if s.parameterListLength != 0 { throw SenseData.invalidField(byte: 7) }
            do { try await device.unmap(lba: 0, blockCount: geometry.blockCount) } catch {
                sanitizeState.withLock { $0.failed = true }
                throw Self.sense(for: error, writing: true)
            }
            sanitizeState.withLock { $0.failed = false }
            return .good
        case .overwrite:
            let length = Int(s.parameterListLength)
            let available = command.receivedDataOutLength
            let bytes = command.dataOut?.array(0..<min(available, length)) ?? []
            let overwrite = try SanitizeOverwrite.decode(bytes, parameterListLength: length, blockSize: blockSize)
            sanitizeState.withLock { $0 = (running: true, failed: false) }
            Task.detached { [self] in await self.overwriteMedium(overwrite) }
            return .good
        }
    }

    /// The background half of SANITIZE OVERWRITE.
    func overwriteMedium(_ overwrite: SanitizeOverwrite) async {
        let blockSize = Int(geometry.blockSize)
        let chunkBlocks = Int(min(maximumTransferBlocks, UInt32(max(1, (1 << 20) / blockSize))))
        let chunk = IOBuffer(count: chunkBlocks * blockSize)
        let clock = ContinuousClock()
        let start = clock.now
        var written = 0
        var failed = false
        passes: for pass in 0..<Int(overwrite.count) {
            let invert = overwrite.invert && pass % 2 == 1
            let p = overwrite.pattern
            let raw = chunk.bytes
            for i in 0..<raw.count { raw[i] = invert ? ~p[i % p.count] : p[i % p.count] }
            var lba: UInt64 = 0
            while lba < geometry.blockCount {
                let n = UInt32(min(UInt64(chunkBlocks), geometry.blockCount - lba))
                do { try await device.write(lba: lba, blockCount: n, from: chunk, offset: 0, fua: false) } catch {
                    failed = true
                    break passes
                }
                lba += UInt64(n)
                written += Int(n) * blockSize
                // Pace to sanitizeBytesPerSecond.
                let due = Duration.seconds(Double(written) / Double(Self.sanitizeBytesPerSecond))
                let elapsed = clock.now - start
                if due > elapsed { try? await Task.sleep(for: due - elapsed) }
            }
        }
        if !failed {
            do { try await device.flush() } catch { failed = true }
        }
        sanitizeState.withLock { $0 = (running: false, failed: failed) }
    }

    /// The bytes of the medium one GET LBA STATUS looks at, at most.
    static let maximumLBAStatusSpan: UInt64 = 1 << 30

    /// GET LBA STATUS (SBC-3 §5.5) from the device's real allocation state.
    func getLBAStatus(lba: UInt64, allocationLength: UInt32) async throws(SenseData) -> SCSIResponse {
        guard thin else { throw SenseData.invalidField(byte: 1, bit: 4) }
        // SBC-3 §5.5.1: STARTING LBA beyond the last block → LBA OUT OF RANGE.
        guard lba < geometry.blockCount else { throw SenseData(.lbaOutOfRange) }
        // SBC-3 §5.5.1: fewer than 24 bytes of allocation is allowed; the header is cut.
        let room = max(1, (Int(allocationLength) - 8) / 16)
        // Bounded work per command: the device walks at most
        // `maximumLBAStatusSpan` bytes of its allocation map (a badly
        // fragmented sparse file would otherwise cost a pair of lseek calls
        // per hole over the whole LUN). SBC-3 §5.5.2 lets the descriptors end
        // before the medium does; the host asks again from where they stopped.
        let spanLimit = max(1, Self.maximumLBAStatusSpan / UInt64(geometry.blockSize))
        let span = min(geometry.blockCount - lba, UInt64(UInt32.max), spanLimit)
        let extents: [BlockExtent]
        do { extents = try await device.allocation(lba: lba, blockCount: span) } catch {
            throw Self.sense(for: error, writing: false)
        }
        var descriptors: [(lba: UInt64, count: UInt32, status: UInt8)] = []
        for e in extents.prefix(room) {
            descriptors.append(
                (
                    e.lba, UInt32(min(e.blockCount, UInt64(UInt32.max))),
                    e.mapped ? LBAStatusData.mapped : LBAStatusData.deallocated
                ))
        }
        if descriptors.isEmpty { descriptors = [(lba, UInt32(min(span, UInt64(UInt32.max))), LBAStatusData.mapped)] }
        return .data(LBAStatusData.encode(descriptors), allocationLength: Int(allocationLength))
    }
}
