/// The regions of one sub-unit that a replica may lack: one bit per region
/// of ``regionBlocks`` blocks (DRBD's dirty bitmap). The primary sets bits
/// for every write a stale replica did not take; a resync copies only the
/// set regions and clears each once the copy is on the replica.
public struct DirtyRegions: Hashable, Sendable {
    /// Blocks per region.
    public let regionBlocks: UInt64
    /// Blocks in the sub-unit.
    public let blockCount: UInt64
    private var words: [UInt64]
    /// Regions set.
    public private(set) var count: Int = 0

    /// An empty bitmap; `all` sets every region (a full copy).
    public init(blockCount: UInt64, regionBlocks: UInt64, all: Bool = false) {
        precondition(regionBlocks > 0, "a region has blocks")
        self.regionBlocks = regionBlocks
        self.blockCount = blockCount
        let regions = Int((blockCount + regionBlocks - 1) / regionBlocks)
        words = Array(repeating: 0, count: (regions + 63) / 64)
        if all { for region in 0..<regions { insert(region) } }
    }

    /// The bitmap as kept on disk: bit `r % 64` of word `r / 64` is region `r`.
    public var storage: [UInt64] { words }

    /// A bitmap read back from ``storage``; nil when the words do not fit
    /// the shape (a record of another sub-unit size or region size).
    public init?(blockCount: UInt64, regionBlocks: UInt64, storage: [UInt64]) {
        guard regionBlocks > 0 else { return nil }
        self.init(blockCount: blockCount, regionBlocks: regionBlocks)
        guard storage.count == words.count else { return nil }
        let tail = regionCount % 64
        if tail != 0, let last = storage.last, last >> UInt64(tail) != 0 { return nil }
        words = storage
        count = storage.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Regions in the sub-unit.
    public var regionCount: Int { Int((blockCount + regionBlocks - 1) / regionBlocks) }
    /// Whether no region is set.
    public var isEmpty: Bool { count == 0 }

    /// Marks every region the blocks `lba..<lba+blocks` touch.
    public mutating func mark(lba: UInt64, blocks: UInt64) {
        guard blocks > 0, lba < blockCount else { return }
        let last = min(lba + blocks, blockCount) - 1
        for region in Int(lba / regionBlocks)...Int(last / regionBlocks) { insert(region) }
    }

    /// Whether `region` is set.
    public func contains(_ region: Int) -> Bool { words[region / 64] & (1 << UInt64(region % 64)) != 0 }

    /// The first set region at or after `start`.
    public func first(from start: Int = 0) -> Int? {
        var region = start
        while region < regionCount {
            let word = words[region / 64] >> UInt64(region % 64)
            if word == 0 {
                region = (region / 64 + 1) * 64
                continue
            }
            return region + word.trailingZeroBitCount
        }
        return nil
    }

    /// The set regions that follow one another from `start` (which is
    /// set), at most `limit` of them: a resync copies them in one transfer.
    public func run(from start: Int, limit: Int) -> Range<Int> {
        var end = start
        while end < regionCount, end - start < limit, contains(end) { end += 1 }
        return start..<end
    }

    /// The blocks of `region`: start and count.
    public func blocks(of region: Int) -> (lba: UInt64, count: UInt64) {
        let lba = UInt64(region) * regionBlocks
        return (lba, min(regionBlocks, blockCount - lba))
    }

    /// Clears `region`.
    public mutating func remove(_ region: Int) {
        guard contains(region) else { return }
        words[region / 64] &= ~(1 << UInt64(region % 64))
        count -= 1
    }

    /// Sets `region`.
    public mutating func insert(_ region: Int) {
        guard !contains(region) else { return }
        words[region / 64] |= 1 << UInt64(region % 64)
        count += 1
    }

    /// Sets every region set in `other` (same shape).
    public mutating func formUnion(_ other: DirtyRegions) {
        var region = 0
        while let next = other.first(from: region) {
            insert(next)
            region = next + 1
        }
    }
}
