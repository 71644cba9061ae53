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
