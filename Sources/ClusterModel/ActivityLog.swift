/// The extents of a LUN a primary may have written locally without every
/// replica having them yet: DRBD's activity log. Before a write touches an
/// extent that is not in the log the extent is added and the log is made
/// durable; an extent leaves the log (least recently used first) only when
/// no write to it is in flight, so whatever the log on disk holds is a
/// superset of the extents a crash can leave ahead of the other replicas.
/// After a crash, only those extents need to be compared with (copied to or
/// from) the other replicas instead of the whole LUN. Pure: the caller
/// persists ``extents`` when ``begin(_:)`` asks for a newer generation.
public struct ActivityLog: Hashable, Sendable {
    /// Extents the log keeps at most, unless writes are in flight in more.
    public let capacity: Int
    /// Blocks per extent.
    public let extentBlocks: UInt64
    /// The extents in the log, least recently used first.
    public private(set) var extents: [UInt64]
    /// Extents recovered from before this start: kept whatever the capacity
    /// until ``unpin()`` (the other replicas may lack what a crash left here).
    public private(set) var pinned: Set<UInt64>
    /// Bumped each time an extent is added.
    public private(set) var generation: UInt64 = 0
    private var inFlight: [UInt64: Int] = [:]
    private var addedAt: [UInt64: UInt64] = [:]

    /// A log of at most `capacity` extents of `extentBlocks` blocks, holding
    /// the `recovered` ones (already durable: generation 0).
    public init(capacity: Int, extentBlocks: UInt64, recovered: [UInt64] = []) {
        precondition(capacity > 0 && extentBlocks > 0, "an activity log holds at least one extent of one block")
        self.capacity = capacity
        self.extentBlocks = extentBlocks
        var seen = Set<UInt64>()
        self.extents = recovered.filter { seen.insert($0).inserted }
        self.pinned = seen
        for extent in extents { addedAt[extent] = 0 }
    }

    /// The extents `blocks` (LUN blocks) touch.
    public func extents(of blocks: Range<UInt64>) -> ClosedRange<UInt64>? {
        guard !blocks.isEmpty else { return nil }
        return blocks.lowerBound / extentBlocks...(blocks.upperBound - 1) / extentBlocks
    }

    /// A write to `blocks` begins: its extents count as in flight and become
    /// the most recently used. Returns the generation the log on disk must
    /// have reached before the write may touch the medium (0: nothing new).
    public mutating func begin(_ blocks: Range<UInt64>) -> UInt64 {
        guard let touched = extents(of: blocks) else { return 0 }
        var needed: UInt64 = 0
        for extent in touched {
            inFlight[extent, default: 0] += 1
            if let at = extents.firstIndex(of: extent) {
                extents.remove(at: at)
            } else {
                generation += 1
                addedAt[extent] = generation
            }
            extents.append(extent)
            needed = max(needed, addedAt[extent] ?? 0)
        }
        evict()
        return needed
    }

    /// The write to `blocks` that ``begin(_:)`` admitted has ended (done or failed).
    public mutating func end(_ blocks: Range<UInt64>) {
        guard let touched = extents(of: blocks) else { return }
        for extent in touched {
            guard let count = inFlight[extent] else { continue }
            inFlight[extent] = count > 1 ? count - 1 : nil
        }
        evict()
    }

    /// The recovered extents may leave the log now (every replica caught up).
    public mutating func unpin() {
        pinned = []
        evict()
    }

    /// The LUN blocks the log covers, one range per extent, in block order.
    public var blockRanges: [Range<UInt64>] {
        extents.sorted().map { $0 * extentBlocks..<($0 + 1) * extentBlocks }
    }

    /// Drops least recently used extents with no write in flight while over capacity.
    private mutating func evict() {
        while extents.count > capacity,
            let at = extents.firstIndex(where: { inFlight[$0] == nil && !pinned.contains($0) })
        {
            addedAt[extents.remove(at: at)] = nil
        }
    }
}
