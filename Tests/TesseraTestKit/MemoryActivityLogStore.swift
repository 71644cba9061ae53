import ClusterModel
import DistributedLUN
import Synchronization

/// An activity log record in memory, with the number of saves (a crash of
/// its node keeps it: a new node attached with it recovers the extents).
public final class MemoryActivityLogStore: ActivityLogStore {
    private let state = Mutex<(extents: [UInt64]?, saves: Int, failing: Bool)>((nil, 0, false))

    public init(extents: [UInt64]? = nil) { state.withLock { $0.extents = extents } }

    /// Saves so far.
    public var saves: Int { state.withLock { $0.saves } }
    /// What the last save wrote.
    public var extents: [UInt64]? { state.withLock { $0.extents } }
    /// Makes every save fail from now on (a full disk).
    public func setFailing(_ value: Bool) { state.withLock { $0.failing = value } }

    /// The dirty-region records kept with the log (they survive a crash of the node too).
    public let records = MemoryDirtyRecordStore()

    public var dirtyRecords: (any DirtyRecordStore)? { records }

    public func load(extentBlocks: UInt64) -> [UInt64]? { state.withLock { $0.extents } }

    public func save(_ extents: [UInt64], extentBlocks: UInt64) async throws(ActivityLogStoreError) {
        await Task.yield()
        try state.withLock { (state) throws(ActivityLogStoreError) in
            guard !state.failing else { throw ActivityLogStoreError("the test store refuses saves") }
            state.extents = extents
            state.saves += 1
        }
    }
}

/// Dirty-region records in memory, with the number of saves and removals.
public final class MemoryDirtyRecordStore: DirtyRecordStore {
    private struct Key: Hashable {
        var index: UInt32
        var node: NodeID
    }

    private let state = Mutex<(records: [Key: DirtyRecord], saves: Int, failing: Bool, removalsFailing: Bool)>(
        ([:], 0, false, false))

    public init() {}

    /// Saves so far.
    public var saves: Int { state.withLock { $0.saves } }
    /// Every record kept now.
    public var all: [DirtyRecord] { state.withLock { Array($0.records.values) } }
    /// The record kept for `node`'s replica of sub-unit `index`.
    public func record(_ index: UInt32, _ node: UInt64) -> DirtyRecord? {
        state.withLock { $0.records[Key(index: index, node: NodeID(node))] }
    }
    /// Makes every save fail from now on, and with `removals` every removal too.
    public func setFailing(_ value: Bool, removals: Bool = false) {
        state.withLock {
            $0.failing = value
            $0.removalsFailing = removals
        }
    }

    public func loadAll() -> [DirtyRecord] { all }

    public func save(_ record: DirtyRecord) throws(ActivityLogStoreError) {
        try state.withLock { (state) throws(ActivityLogStoreError) in
            guard !state.failing else { throw ActivityLogStoreError("the test store refuses saves") }
            state.records[Key(index: record.index, node: record.node)] = record
            state.saves += 1
        }
    }

    public func remove(index: UInt32, node: NodeID) throws(ActivityLogStoreError) {
        try state.withLock { (state) throws(ActivityLogStoreError) in
            guard !state.removalsFailing else { throw ActivityLogStoreError("the test store refuses removals") }
            state.records.removeValue(forKey: Key(index: index, node: node))
        }
    }
}
