import BlockStorage
import ClusterModel

// The primary brings a stale replica back (ARCHITECTURE.md "The data path"):
// the replica becomes a write-only learner (resyncing, epoch + 1) that takes
// live writes at once, the regions it lacks stream from the primary under
// the sub-unit's write ordering, and a store commit makes it in sync
// (epoch + 1) only when nothing is left.

extension ReplicaNode {
    /// Resyncs every stale or resyncing replica of the sub-units this node is
    /// primary of whose node `isLive` says is back, one after another.
    /// Returns how many finished.
    @discardableResult
    public func resyncReturned(_ lun: LUNID, isLive: @Sendable (NodeID) -> Bool) async -> Int {
        guard let replicas = replicas(lun) else { return 0 }
        var finished = 0
        for (index, set) in replicas.map.subUnits.enumerated() where set.primary == id {
            for replica in set.secondaries where replica.state != .inSync && isLive(replica.node) {
                if await resync(lun, index: UInt32(index), node: replica.node) { finished += 1 }
            }
        }
        return finished
    }

    /// Brings `node`'s replica of sub-unit `index` in sync: only the regions
    /// this node recorded as missed when it has a record since the replica
    /// was last in sync, every region otherwise. True when a store commit
    /// made it in sync; false when it could not start or stopped (it may be
    /// run again: regions already copied stay copied).
    public func resync(_ lun: LUNID, index: UInt32, node target: NodeID) async -> Bool {
        guard let replicas = replicas(lun), let extent = replicas.extents[index], let gate = replicas.gate(index) else {
            return false
        }
        let subUnit = SubUnitID(lun: lun, index: index)
        let key = ResyncBook.Key(subUnit: subUnit, node: target)
        let blockSize = UInt64(replicas.layout.blockSize)
        let blocks = replicas.layout.blocks(in: index)
        let dirtyKey = LUNReplicas.DirtyKey(index: index, node: target)
        let recent = resyncs.withLock { book in
            book.lastFailure[key].map { ContinuousClock.now - $0 < resyncRetryPause } ?? false
        }
        guard !recent else { return false }
        // The replica must answer before anything changes in the store: a
        // node that died a moment ago still looks alive to the lease reader.
        guard case .done = await transport.send(.flush(lun), to: target, timeout: replicationTimeout) else {
            resyncs.withLock { $0.lastFailure[key] = .now }
            return false
        }
        // A replica this node took over from as primary may hold writes of
        // its own: the regions its activity log names are copied too (all
        // of them when it keeps no log).
        let peerLog = replicas.needsPeerLog.withLock { $0.contains(dirtyKey) } ? await activityLog(of: target, index: index, in: replicas) : nil

        // Begin, holding the whole sub-unit: no write straddles the change of
        // set, so every write either reaches the learner or marks its regions.
        let begun: ResyncProgress? = await gate.withRange(0..<blocks) {
            guard let current = replicas.replicaSet(index), current.primary == id,
                let replica = current.replicas.first(where: { $0.node == target }), replica.state != .inSync
            else { return nil }
            let inserted = resyncs.withLock { book in
                guard book.running[key] == nil else { return false }
                book.running[key] = ResyncProgress(
                    subUnit: subUnit, node: target, bytesTotal: 0, bytesDone: 0, full: false, startedAt: .now)
                return true
            }
            guard inserted else { return nil }
            if replica.state == .stale {
                guard let next = FailoverPlan.setting([target], to: .resyncing, in: current),
                    await source.replaceReplicaSet(lun, index: index, expecting: current.epoch, with: next) == .replaced
                else {
                    resyncs.withLock { _ = $0.running.removeValue(forKey: key) }
                    await replicas.reload()
                    return nil
                }
                replicas.adopt(index, next)
            }
            let full = replicas.dirty.withLock { dirty in
                if let peerLog {
                    if let logged = peerLog, dirty[dirtyKey] != nil {
                        for range in logged { dirty[dirtyKey]!.mark(lba: range.lowerBound, blocks: UInt64(range.count)) }
                    } else {
                        dirty[dirtyKey] = nil
                    }
                }
                guard dirty[dirtyKey] == nil else { return false }
                dirty[dirtyKey] = DirtyRegions(blockCount: blocks, regionBlocks: replicas.regionBlocks, all: true)
                return true
            }
            if peerLog != nil { _ = replicas.needsPeerLog.withLock { $0.remove(dirtyKey) } }
            replicas.records?.touch([dirtyKey])
            let regions = UInt64(replicas.dirty.withLock { $0[dirtyKey]?.count ?? 0 })
            return resyncs.withLock { book in
                book.running[key]?.full = full
                book.running[key]?.bytesTotal = regions * replicas.regionBlocks * blockSize
                return book.running[key]
            }
        }
        guard let begun else { return false }
        report(.started(begun))

        func stop(_ reason: String) async -> Bool {
            let progress =
                resyncs.withLock { book in
                    book.lastFailure[key] = .now
                    return book.running.removeValue(forKey: key)
                } ?? begun
            report(.failed(progress, reason: reason))
            replicas.records?.touch([dirtyKey])
            // No longer a learner: live writes stop going to it until it is tried again.
            if let current = replicas.replicaSet(index), current.primary == id,
                let next = FailoverPlan.setting([target], to: .stale, in: current),
                await source.replaceReplicaSet(lun, index: index, expecting: current.epoch, with: next) == .replaced
            {
                replicas.adopt(index, next)
            }
            return false
        }

        /// What the record says to do next.
        enum Next {
            case copy(regions: Range<Int>, lba: UInt64, count: UInt64)
            case finish
            /// The record is gone (the sub-unit grew, or the set changed
            /// under it): what the replica lacks is unknown, start again.
            case dropped
        }

        var tenths = 0
        var cleared = 0
        while true {
            let next: Next = replicas.dirty.withLock { dirty in
                guard let record = dirty[dirtyKey] else { return .dropped }
                guard let region = record.first() else { return .finish }
                let regions = record.run(from: region, limit: Self.resyncRegionsPerCopy)
                let (lba, _) = record.blocks(of: regions.lowerBound)
                let last = record.blocks(of: regions.upperBound - 1)
                return .copy(regions: regions, lba: lba, count: last.lba + last.count - lba)
            }
            if case .dropped = next { return await stop("its dirty-region record was dropped") }
            guard case .copy(let regions, let lba, let count) = next else {
                // Finish, holding the whole sub-unit: nothing left to copy and
                // nothing in flight, then the learner is durable and in sync.
                let finished: Bool? = await gate.withRange(0..<blocks) {
                    guard let record = replicas.dirty.withLock({ $0[dirtyKey] }) else { return false }
                    guard record.isEmpty else { return nil }
                    guard let current = replicas.replicaSet(index), current.primary == id,
                        current.replicas.first(where: { $0.node == target })?.state == .resyncing
                    else { return false }
                    guard case .done = await transport.send(.flush(lun), to: target, timeout: replicationTimeout),
                        let next = FailoverPlan.setting([target], to: .inSync, in: current),
                        await source.replaceReplicaSet(lun, index: index, expecting: current.epoch, with: next) == .replaced
                    else { return false }
                    replicas.adopt(index, next)
                    _ = replicas.dirty.withLock { $0.removeValue(forKey: dirtyKey) }
                    replicas.records?.touch([dirtyKey])
                    return true
                }
                guard let finished else { continue }
                guard finished else { return await stop("could not commit it in sync") }
                let progress = resyncs.withLock { book in
                    book.finished += 1
                    return book.running.removeValue(forKey: key)
                }
                if let progress { report(.finished(progress)) }
                return true
            }
            // The region is cleared once the replica has it, not before: a
            // save of the record in between still names it. Writes to it
            // wait for the range meanwhile, so none is lost by clearing late.
            let failure: String? = await gate.withRange(lba..<lba + count) {
                guard let current = replicas.replicaSet(index), current.primary == id,
                    current.replicas.first(where: { $0.node == target })?.state == .resyncing
                else { return "the replica set changed" }
                let buffer = IOBuffer(count: Int(count * blockSize))
                do throws(BlockDeviceError) {
                    try await extent.read(lba: lba, blockCount: UInt32(count), into: buffer, offset: 0)
                } catch {
                    return "reading the primary's replica: \(error)"
                }
                let io = PeerIO(subUnit: subUnit, epoch: current.epoch, lba: lba, blockCount: UInt32(count))
                let write = PeerWrite(io: io, fua: false, data: buffer, offset: 0, length: buffer.count)
                let reply = await transport.send(.replicate(write), to: target, timeout: replicationTimeout)
                guard case .done = reply else { return "the replica did not take a region: \(reply)" }
                replicas.dirty.withLock { dirty in for region in regions { dirty[dirtyKey]?.remove(region) } }
                return nil
            }
            if let failure { return await stop(failure) }
            // Cleared regions reach the disk every few MiB (and when the
            // resync ends): a crash then copies at most those again.
            if (cleared + regions.count) / Self.resyncRegionsPerRecordSave > cleared / Self.resyncRegionsPerRecordSave {
                replicas.records?.touch([dirtyKey])
            }
            cleared += regions.count
            let copied = count * blockSize
            let progress = resyncs.withLock { book in
                book.bytesCopied += copied
                book.running[key]?.bytesDone += copied
                if let p = book.running[key], p.bytesDone > p.bytesTotal { book.running[key]?.bytesTotal = p.bytesDone }
                return book.running[key]
            }
            guard let progress else { continue }
            if Int(progress.percent / 10) > tenths, progress.percent < 100 {
                tenths = Int(progress.percent / 10)
                report(.progressed(progress))
            }
            await throttle(progress)
        }
    }

    /// Regions a resync copies between two saves of its record (64 × 64 KiB:
    /// one small save per 4 MiB copied).
    static let resyncRegionsPerRecordSave = 64

    /// Adjacent dirty regions copied in one read and one peer write (16 ×
    /// 64 KiB = 1 MiB): a round trip per region made a resync's rate the
    /// round-trip time's, about 0.2 MiB/s in a TCG guest. Host writes to
    /// the range wait for the one copy meanwhile, as they did for a region.
    static let resyncRegionsPerCopy = 16

    /// The blocks of sub-unit `index` that `node`'s activity log names:
    /// `.some(nil)` when it keeps none or does not answer (copy everything).
    private func activityLog(of node: NodeID, index: UInt32, in replicas: LUNReplicas) async -> [Range<UInt64>]?? {
        guard case .extents(let logged) = await transport.send(.activityLog(replicas.lun), to: node, timeout: replicationTimeout)
        else { return .some(nil) }
        let first = replicas.layout.firstBlock(of: index)
        let end = first + replicas.layout.blocks(in: index)
        return .some(
            logged.compactMap { extent in
                let (low, high) = (max(extent.lba, first), min(extent.lba &+ extent.blockCount, end))
                return low < high ? low - first..<high - first : nil
            })
    }

    /// Sleeps as long as copying ran ahead of ``resyncRate``.
    private func throttle(_ progress: ResyncProgress) async {
        guard let rate = resyncRate, rate > 0 else { return }
        let due = Duration.seconds(Double(progress.bytesDone) / Double(rate))
        let elapsed = ContinuousClock.now - progress.startedAt
        if due > elapsed { await sleep(due - elapsed) }
    }

    /// The resyncs running now and the totals so far.
    public var resyncStatus: ResyncBook { resyncs.withLock { $0 } }
}
