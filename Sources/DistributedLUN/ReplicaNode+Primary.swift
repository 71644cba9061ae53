import BlockStorage
import ClusterModel

// What a node does as a sub-unit's primary (order, apply locally, replicate
// in parallel, answer when every replica has it) and as a secondary (apply
// what the primary ordered, at the primary's epoch).

extension ReplicaNode {
    /// Reads a piece of a sub-unit this node is primary of into `buffer`.
    func primaryRead(_ target: Accepted, _ io: PeerIO, into buffer: IOBuffer, offset: Int) async -> PeerFailure? {
        do {
            try await target.extent.read(lba: io.lba, blockCount: io.blockCount, into: buffer, offset: offset)
            return nil
        } catch {
            return PeerFailure(error)
        }
    }

    /// A write to a sub-unit this node is primary of: ordered against
    /// overlapping writes, applied locally and on every secondary that takes
    /// writes, in parallel; done only when all of them have it.
    func primaryWrite(_ write: PeerWrite) async -> PeerReply {
        let target: Accepted
        switch await accept(write.io, as: .primary) {
        case .failure(let failure): return .failure(failure)
        case .success(let accepted): target = accepted
        }
        guard Self.carriesData(write, blockSize: target.replicas.layout.blockSize) else {
            return .failure(PeerFailure(.badRequest, detail: "write data shorter than its blocks"))
        }
        let io = write.io
        return await target.gate.withRange(io.blocks) {
            if let moved = setChanged(target) ?? target.replicas.cutOff(target.index, io.blocks) { return moved }
            return await replicated(target, .replicate(write), blocks: io.blocks) { () async throws(BlockDeviceError) in
                try await target.extent.write(
                    lba: io.lba, blockCount: io.blockCount, from: write.data, offset: write.offset, fua: write.fua)
            }
        }
    }

    /// An unmap of a sub-unit this node is primary of, ordered and replicated like a write.
    func primaryUnmap(_ io: PeerIO) async -> PeerReply {
        let target: Accepted
        switch await accept(io, as: .primary) {
        case .failure(let failure): return .failure(failure)
        case .success(let accepted): target = accepted
        }
        return await target.gate.withRange(io.blocks) {
            if let moved = setChanged(target) ?? target.replicas.cutOff(target.index, io.blocks) { return moved }
            return await replicated(target, .replicateUnmap(io), blocks: io.blocks) { () async throws(BlockDeviceError) in
                try await target.extent.unmap(lba: io.lba, blockCount: UInt64(io.blockCount))
            }
        }
    }

    /// COMPARE AND WRITE at the primary: holding the range, compare with the
    /// local replica (in sync by definition) and write the second half
    /// everywhere only on a match (SBC-3 §5.2: atomic with respect to every
    /// other command, whichever node it came through).
    func primaryCompareAndWrite(_ write: PeerWrite) async -> PeerReply {
        let target: Accepted
        switch await accept(write.io, as: .primary) {
        case .failure(let failure): return .failure(failure)
        case .success(let accepted): target = accepted
        }
        let blockSize = target.replicas.layout.blockSize
        guard Self.carriesData(write, blockSize: blockSize, halves: 2) else {
            return .failure(PeerFailure(.badRequest, detail: "compare-and-write data shorter than two halves"))
        }
        let io = write.io
        let half = Int(io.blockCount) * Int(blockSize)
        return await target.gate.withRange(io.blocks) {
            if let moved = setChanged(target) ?? target.replicas.cutOff(target.index, io.blocks) { return moved }
            let medium = IOBuffer(count: half)
            do throws(BlockDeviceError) {
                try await target.extent.read(lba: io.lba, blockCount: io.blockCount, into: medium, offset: 0)
            } catch {
                return .failure(PeerFailure(error))
            }
            if let difference = CompareAndWriteOutcome.firstDifference(medium, 0, write.data, write.offset, length: half) {
                return .miscompare(offset: UInt32(truncatingIfNeeded: difference))
            }
            let second = PeerWrite(io: io, fua: write.fua, data: write.data, offset: write.offset + half, length: half)
            return await replicated(target, .replicate(second), blocks: io.blocks) { () async throws(BlockDeviceError) in
                try await target.extent.write(
                    lba: io.lba, blockCount: io.blockCount, from: write.data, offset: write.offset + half, fua: write.fua)
            }
        }
    }

    /// The allocation state of a piece, from the primary's replica.
    func primaryAllocation(_ io: PeerIO) async -> PeerReply {
        switch await accept(io, as: .primary) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let target):
            do {
                return .extents(try await target.extent.allocation(lba: io.lba, blockCount: UInt64(io.blockCount)))
            } catch {
                return .failure(PeerFailure(error))
            }
        }
    }

    /// Applies a write the primary ordered.
    func secondaryWrite(_ write: PeerWrite) async -> PeerReply {
        switch await accept(write.io, as: .secondary) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let target):
            guard Self.carriesData(write, blockSize: target.replicas.layout.blockSize) else {
                return .failure(PeerFailure(.badRequest, detail: "replicated data shorter than its blocks"))
            }
            do {
                try await target.extent.write(
                    lba: write.io.lba, blockCount: write.io.blockCount, from: write.data, offset: write.offset, fua: write.fua)
                return .done
            } catch {
                return .failure(PeerFailure(error))
            }
        }
    }

    /// Applies an unmap the primary ordered.
    func secondaryUnmap(_ io: PeerIO) async -> PeerReply {
        switch await accept(io, as: .secondary) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let target):
            do {
                try await target.extent.unmap(lba: io.lba, blockCount: UInt64(io.blockCount))
                return .done
            } catch {
                return .failure(PeerFailure(error))
            }
        }
    }

    /// A stale-epoch refusal when the sub-unit's set changed while the request
    /// waited for its range and this node is no longer its primary (a
    /// failback or failover handed it on): nothing may be written under a
    /// primary role this node has given up. nil when it may go on.
    func setChanged(_ target: Accepted) -> PeerReply? {
        guard let current = target.replicas.replicaSet(target.index), current.epoch != target.set.epoch,
            current.primary != id
        else { return nil }
        return .failure(
            PeerFailure(.staleEpoch, epoch: current.epoch, detail: "primary of sub-unit \(target.index) moved to \(current.primary)"))
    }

    /// Flushes every device under this node's extents of the LUN, each once
    /// (the extents are windows on one file: one flush covers them all).
    func flushLocal(_ lun: LUNID) async -> PeerReply {
        guard let replicas = replicas(lun) else { return .failure(PeerFailure(.unknownSubUnit, detail: "\(lun)")) }
        var devices: [ObjectIdentifier: any BlockDevice] = [:]
        for extent in replicas.extents.values {
            let device = (extent as? BlockDeviceWindow)?.base ?? extent
            devices[ObjectIdentifier(device)] = device
        }
        let failures = await withTaskGroup(of: BlockDeviceError?.self) { group in
            for extent in devices.values {
                group.addTask {
                    do throws(BlockDeviceError) { try await extent.flush() } catch { return error }
                    return nil
                }
            }
            var failures: [BlockDeviceError] = []
            for await case let failure? in group { failures.append(failure) }
            return failures
        }
        if let failure = failures.first { return .failure(PeerFailure(failure)) }
        return .done
    }

    /// Runs `local` and sends `request` to every secondary that takes writes,
    /// all at once; done only when every one has it or has been marked stale.
    /// A local failure wins (the medium's error); a secondary that refused
    /// for a stale map makes this node reload and answer stale too, so the
    /// sender retries on the new map. A secondary that missed the write for
    /// any other reason is marked stale in the store *before* the write is
    /// acknowledged (``degrade(_:_:blocks:)``), so it can never be promoted
    /// without it (ARCHITECTURE.md "The data path"). Stale replicas take no
    /// writes; the blocks they miss are remembered for their resync.
    func replicated(
        _ target: Accepted, _ request: PeerRequest, blocks: Range<UInt64>,
        local: @escaping @Sendable () async throws(BlockDeviceError) -> Void
    ) async -> PeerReply {
        // The activity log first: after a crash, whoever resyncs this
        // replica must know this write may be here and nowhere else. A set
        // of one replica has no other copy this write could leave behind
        // (a replica added to it later starts stale with no record: a full
        // copy), so it logs nothing: a lone node's writes never wait for the record.
        let first = target.replicas.layout.firstBlock(of: target.index)
        let logged = first + blocks.lowerBound..<first + blocks.upperBound
        let activity = target.set.secondaries.isEmpty ? nil : target.replicas.activity
        if let activity {
            guard await activity.begin(logged) else {
                activity.end(logged)
                return .failure(PeerFailure(.ioError, detail: "the activity log could not be written"))
            }
        }
        defer { activity?.end(logged) }
        var marked: [LUNReplicas.DirtyKey] = []
        for replica in target.set.secondaries where replica.state == .stale {
            if target.replicas.markDirty(target.index, for: replica.node, blocks, startIfMissing: false) {
                marked.append(LUNReplicas.DirtyKey(index: target.index, node: replica.node))
            }
        }
        // A region a stale replica now lacks is in the record on disk before
        // the write touches the medium: after a crash the record still
        // names every region this node has and the replica does not.
        if !marked.isEmpty, let records = target.replicas.records, await !records.persist(marked) {
            return .failure(PeerFailure(.ioError, detail: "the dirty-region record could not be written"))
        }
        let secondaries = target.set.writeTargets
        if secondaries.isEmpty {
            // One replica: no task group on the hot path of a lone node.
            do throws(BlockDeviceError) { try await local() } catch { return .failure(PeerFailure(error)) }
            return .done
        }
        let transport = self.transport
        let timeout = replicationTimeout
        let (localReply, replies) = await withTaskGroup(of: (NodeID, PeerReply).self) { group in
            for node in secondaries {
                group.addTask { (node, await transport.send(request, to: node, timeout: timeout)) }
            }
            var localReply = PeerReply.done
            do throws(BlockDeviceError) { try await local() } catch { localReply = .failure(PeerFailure(error)) }
            var replies: [(NodeID, PeerReply)] = []
            for await reply in group { replies.append(reply) }
            return (localReply, replies)
        }
        if case .failure(let failure) = localReply { return .failure(failure) }
        var missed: [NodeID] = []
        for case (let node, .failure(let failure)) in replies {
            if failure.isStaleMap {
                await target.replicas.reload()
                return .failure(PeerFailure(.staleEpoch, detail: "a secondary refused: \(failure)"))
            }
            missed.append(node)
        }
        return missed.isEmpty ? .done : await degrade(target, missed, blocks: blocks)
    }
}

extension PeerIO {
    /// The blocks of the sub-unit the request covers.
    var blocks: Range<UInt64> { lba..<lba + UInt64(blockCount) }
}
