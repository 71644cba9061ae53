import BlockStorage
import ClusterModel

/// A distributed LUN as a ``BlockDevice``: each command is split at sub-unit
/// boundaries and every piece goes to its sub-unit's primary — the local
/// extent when this node is the primary, the peer port otherwise. Ownership
/// never follows the path a command arrived on. A piece refused for a stale
/// map is retried after reloading the map; one that cannot complete in time
/// fails with ``BlockDeviceError/Code/unavailable`` (retryable), never hangs.
public final class DistributedBlockDevice: BlockDevice {
    let replicas: LUNReplicas
    let node: ReplicaNode

    init(replicas: LUNReplicas, node: ReplicaNode) {
        self.replicas = replicas
        self.node = node
    }

    /// The LUN.
    public var lun: LUNID { replicas.lun }
    /// The node's current copy of the LUN's map.
    public var map: SubUnitMap { replicas.map }

    public var geometry: BlockGeometry {
        BlockGeometry(blockSize: replicas.layout.blockSize, blockCount: replicas.layout.blockCount)
    }

    public var supportsUnmap: Bool { true }

    public func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError) {
        try check(lba, UInt64(blockCount))
        let blockSize = Int(geometry.blockSize)
        try await forEachPiece(lba, UInt64(blockCount)) { piece, io, primary in
            let at = offset + Int(piece.commandOffset) * blockSize
            if primary == self.node.id {
                switch await self.node.accept(io, as: .primary) {
                case .failure(let failure): return .failure(failure)
                case .success(let target):
                    return await self.node.primaryRead(target, io, into: buffer, offset: at).map { .failure($0) } ?? .done
                }
            }
            let reply = await self.node.transport.send(.read(io), to: primary, timeout: self.node.forwardTimeout)
            guard case .data(let data) = reply else { return reply }
            let length = Int(io.blockCount) * blockSize
            guard data.count >= length else { return .failure(PeerFailure(.badRequest, detail: "short read reply")) }
            (buffer.baseAddress + at).copyMemory(from: data.baseAddress, byteCount: length)
            return .done
        }
    }

    public func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError)
    {
        try check(lba, UInt64(blockCount))
        let blockSize = Int(geometry.blockSize)
        try await forEachPiece(lba, UInt64(blockCount)) { piece, io, primary in
            let write = PeerWrite(
                io: io, fua: fua, data: buffer, offset: offset + Int(piece.commandOffset) * blockSize,
                length: Int(io.blockCount) * blockSize)
            return primary == self.node.id
                ? await self.node.primaryWrite(write)
                : await self.node.transport.send(.write(write), to: primary, timeout: self.node.forwardTimeout)
        }
    }

    public func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {
        try check(lba, blockCount)
        try await forEachPiece(lba, blockCount) { _, io, primary in
            primary == self.node.id
                ? await self.node.primaryUnmap(io)
                : await self.node.transport.send(.unmap(io), to: primary, timeout: self.node.forwardTimeout)
        }
    }

    public func compareAndWrite(lba: UInt64, blockCount: UInt32, buffer: IOBuffer, offset: Int, fua: Bool)
        async throws(BlockDeviceError) -> CompareAndWriteOutcome
    {
        try check(lba, UInt64(blockCount))
        let pieces = replicas.layout.pieces(lba: lba, blockCount: UInt64(blockCount))
        // The sub-unit size is a multiple of the largest COMPARE AND WRITE, so
        // one never spans two sub-units (SubUnitLayout.problem).
        guard pieces.count == 1, let piece = pieces.first else {
            throw BlockDeviceError(.notSupported, detail: "COMPARE AND WRITE across a sub-unit boundary")
        }
        var outcome = CompareAndWriteOutcome.written
        try await run(piece) { io, primary in
            let write = PeerWrite(
                io: io, fua: fua, data: buffer, offset: offset, length: 2 * Int(blockCount) * Int(self.geometry.blockSize))
            let reply =
                primary == self.node.id
                ? await self.node.primaryCompareAndWrite(write)
                : await self.node.transport.send(.compareAndWrite(write), to: primary, timeout: self.node.forwardTimeout)
            if case .miscompare(let at) = reply {
                outcome = .miscompare(offset: Int(at))
                return .done
            }
            return reply
        }
        return outcome
    }

    /// SYNCHRONIZE CACHE: every node holding a replica that takes writes
    /// (a primary, an in-sync or resyncing secondary) flushes all of its
    /// extents. Every write acknowledged before this call is on each of them
    /// already, so this makes all of them durable everywhere; a stale replica
    /// is brought back by a resync, which ends with a flush of its own.
    public func flush() async throws(BlockDeviceError) {
        let nodes = Set(replicas.map.subUnits.flatMap { [$0.primary] + $0.writeTargets })
        let lun = replicas.lun
        let node = self.node
        let replies = await withTaskGroup(of: PeerReply.self) { group in
            for target in nodes {
                group.addTask {
                    target == node.id
                        ? await node.flushLocal(lun)
                        : await node.transport.send(.flush(lun), to: target, timeout: node.forwardTimeout)
                }
            }
            var replies: [PeerReply] = []
            for await reply in group { replies.append(reply) }
            return replies
        }
        for case .failure(let failure) in replies { throw failure.deviceError }
    }

    /// Sub-units one allocation query visits at most: each is a round trip
    /// to its primary, and the protocol allows answering for fewer blocks.
    static let maximumAllocationPieces = 64

    /// GET LBA STATUS: the pieces' extents from their primaries, in LBA
    /// order, with runs of one state merged across sub-unit boundaries, so the
    /// answer is the one a single device would give (for at most
    /// ``maximumAllocationPieces`` sub-units from `lba`).
    public func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        try check(lba, blockCount)
        var merged: [BlockExtent] = []
        let pieces = replicas.layout.pieces(lba: lba, blockCount: blockCount).prefix(Self.maximumAllocationPieces)
        for piece in pieces {
            var extents: [BlockExtent] = []
            try await run(piece) { io, primary in
                let reply =
                    primary == self.node.id
                    ? await self.node.primaryAllocation(io)
                    : await self.node.transport.send(.allocation(io), to: primary, timeout: self.node.forwardTimeout)
                guard case .extents(let found) = reply else { return reply }
                extents = found
                return .done
            }
            let base = replicas.layout.firstBlock(of: piece.index)
            var covered: UInt64 = 0
            for extent in extents where covered < piece.blockCount {
                let n = min(extent.blockCount, piece.blockCount - covered)
                let shifted = BlockExtent(lba: base + piece.lba + covered, blockCount: n, mapped: extent.mapped)
                if let last = merged.last, last.mapped == shifted.mapped, last.lba + last.blockCount == shifted.lba {
                    merged[merged.count - 1].blockCount += n
                } else {
                    merged.append(shifted)
                }
                covered += n
            }
            // A primary may answer for fewer blocks than asked: stop at the first gap.
            if covered < piece.blockCount { break }
        }
        return merged
    }

    public func close() async {
        node.detach(replicas.lun)
    }

    // MARK: Routing

    private func check(_ lba: UInt64, _ count: UInt64) throws(BlockDeviceError) {
        guard contains(lba: lba, blockCount: count) else { throw BlockDeviceError(.outOfRange) }
    }

    /// Runs `body` for every piece of the range, in parallel when there are several.
    private func forEachPiece(
        _ lba: UInt64, _ count: UInt64,
        _ body: @escaping @Sendable (SubUnitLayout.Piece, PeerIO, NodeID) async -> PeerReply
    ) async throws(BlockDeviceError) {
        let layout = replicas.layout
        if let piece = layout.piece(lba: lba, blockCount: count) {
            try await run(piece) { io, primary in await body(piece, io, primary) }
            return
        }
        let pieces = layout.pieces(lba: lba, blockCount: count)
        let failure = await withTaskGroup(of: BlockDeviceError?.self) { group in
            for piece in pieces {
                group.addTask {
                    do throws(BlockDeviceError) {
                        try await self.run(piece) { io, primary in await body(piece, io, primary) }
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var first: BlockDeviceError?
            for await case let error? in group where first == nil { first = error }
            return first
        }
        if let failure { throw failure }
    }

    /// Sends one piece to its sub-unit's primary at the cached epoch. On a
    /// stale-map answer it reloads the map and tries again, a bounded number
    /// of times. A primary that cannot be reached (or has no lease) is given
    /// ``ReplicaNode/failoverWait`` to be replaced: the piece is re-sent,
    /// after a reload, with growing pauses until then (ARCHITECTURE.md
    /// "Failover").
    private func run(
        _ piece: SubUnitLayout.Piece, _ attempt: (PeerIO, NodeID) async -> PeerReply
    ) async throws(BlockDeviceError) {
        var lastFailure = PeerFailure(.unavailable, detail: "no attempt")
        let clock = ContinuousClock()
        let deadline = clock.now + node.failoverWait
        var pause = Duration.milliseconds(50)
        var staleRounds = 0
        var round = 0
        while true {
            if round > 0 { await replicas.reload() }
            round += 1
            guard let set = replicas.replicaSet(piece.index) else { throw BlockDeviceError(.outOfRange) }
            let io = peerIO(piece, at: set)
            let reply = await attempt(io, set.primary)
            guard case .failure(let failure) = reply else { return }
            lastFailure = failure
            if failure.isStaleMap {
                staleRounds += 1
                if staleRounds > ReplicaNode.staleRetries { break }
                continue
            }
            guard failure.code == .unavailable, clock.now + pause < deadline else { break }
            await node.sleep(pause)
            pause = min(pause * 2, .milliseconds(400))
        }
        throw lastFailure.deviceError
    }

    /// `piece` as a request to its sub-unit at `set`'s epoch.
    private func peerIO(_ piece: SubUnitLayout.Piece, at set: ReplicaSet) -> PeerIO {
        PeerIO(
            subUnit: SubUnitID(lun: replicas.lun, index: piece.index), epoch: set.epoch, lba: piece.lba,
            blockCount: UInt32(piece.blockCount))
    }
}

extension DistributedBlockDevice: MappedReadableBlockDevice {
    /// A range within one sub-unit this node is primary of, lent by the local
    /// extent once the node accepts the read as that primary (lease and
    /// epoch, as ``read(lba:blockCount:into:offset:)`` checks them). Nil for
    /// anything else, a refusal included: the read that follows runs the
    /// whole protocol and reports what it finds.
    public func mappedRead(lba: UInt64, blockCount: UInt32) async -> IOBuffer? {
        guard contains(lba: lba, blockCount: UInt64(blockCount)),
            let piece = replicas.layout.piece(lba: lba, blockCount: UInt64(blockCount)),
            let set = replicas.replicaSet(piece.index), set.primary == node.id
        else { return nil }
        let io = peerIO(piece, at: set)
        guard case .success(let target) = await node.accept(io, as: .primary),
            let lender = target.extent as? any MappedReadableBlockDevice
        else { return nil }
        return await lender.mappedRead(lba: io.lba, blockCount: io.blockCount)
    }
}
