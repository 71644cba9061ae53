/// How a LUN's block space is cut into sub-units: every sub-unit but the last
/// holds `subUnitBlocks` blocks. Pure arithmetic, no I/O.
public struct SubUnitLayout: Hashable, Sendable {
    /// Logical block length in bytes.
    public var blockSize: UInt32
    /// The LUN's capacity in blocks.
    public var blockCount: UInt64
    /// Blocks per sub-unit (the last one may be shorter).
    public var subUnitBlocks: UInt64

    /// The smallest sub-unit (small test LUNs still have several).
    public static let minimumSubUnitBytes: UInt64 = 1 << 20
    /// The largest sub-unit: per-piece block counts stay within 32 bits.
    public static let maximumSubUnitBytes: UInt64 = 1 << 40
    /// The default sub-unit size.
    public static let defaultSubUnitBytes: UInt64 = 1 << 30

    public init(blockSize: UInt32, blockCount: UInt64, subUnitBlocks: UInt64) {
        precondition(blockSize > 0 && subUnitBlocks > 0, "empty layout")
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.subUnitBlocks = subUnitBlocks
    }

    /// Why a sub-unit size cannot be used, or nil when it can. The size must
    /// be a multiple of the block size and of the largest COMPARE AND WRITE
    /// (`atomicBlocks` blocks, SBC-3 §6.5.3 MAXIMUM COMPARE AND WRITE LENGTH),
    /// so no atomic command ever spans two sub-units.
    public static func problem(subUnitBytes: UInt64, blockSize: UInt32, atomicBlocks: UInt64) -> String? {
        let atomicBytes = UInt64(blockSize) * max(atomicBlocks, 1)
        if subUnitBytes < minimumSubUnitBytes || subUnitBytes > maximumSubUnitBytes {
            return "sub_unit_size \(subUnitBytes) must be between 1 MiB and 1 TiB"
        }
        if subUnitBytes % atomicBytes != 0 {
            return "sub_unit_size \(subUnitBytes) is not a multiple of \(atomicBytes) (block size × largest COMPARE AND WRITE)"
        }
        return nil
    }

    /// Number of sub-units.
    public var subUnitCount: UInt32 {
        UInt32((blockCount + subUnitBlocks - 1) / subUnitBlocks)
    }

    /// First LUN block of sub-unit `index`.
    public func firstBlock(of index: UInt32) -> UInt64 { UInt64(index) * subUnitBlocks }

    /// Blocks in sub-unit `index` (the last may be short).
    public func blocks(in index: UInt32) -> UInt64 {
        let first = firstBlock(of: index)
        return first >= blockCount ? 0 : min(subUnitBlocks, blockCount - first)
    }

    /// One piece of a command: the part of `[lba, lba + count)` inside one sub-unit.
    public struct Piece: Hashable, Sendable {
        /// The sub-unit.
        public var index: UInt32
        /// First block, relative to the sub-unit's start.
        public var lba: UInt64
        /// Blocks in this piece.
        public var blockCount: UInt64
        /// Blocks from the command's start to this piece (its buffer offset / block size).
        public var commandOffset: UInt64

        public init(index: UInt32, lba: UInt64, blockCount: UInt64, commandOffset: UInt64) {
            self.index = index
            self.lba = lba
            self.blockCount = blockCount
            self.commandOffset = commandOffset
        }
    }

    /// `[lba, lba + count)` as one piece when it lies within one sub-unit
    /// (most commands), without building an array; nil otherwise.
    public func piece(lba: UInt64, blockCount count: UInt64) -> Piece? {
        let index = lba / subUnitBlocks
        guard count > 0, (lba + (count - 1)) / subUnitBlocks == index else { return nil }
        return Piece(index: UInt32(index), lba: lba - index * subUnitBlocks, blockCount: count, commandOffset: 0)
    }

    /// Splits `[lba, lba + count)` at sub-unit boundaries, in LBA order. The
    /// caller has checked the range against the capacity.
    public func pieces(lba: UInt64, blockCount count: UInt64) -> [Piece] {
        var pieces: [Piece] = []
        var at = lba
        let end = lba + count
        while at < end {
            let index = at / subUnitBlocks
            let start = index * subUnitBlocks
            let n = min(end, start + subUnitBlocks) - at
            pieces.append(Piece(index: UInt32(index), lba: at - start, blockCount: n, commandOffset: at - lba))
            at += n
        }
        return pieces
    }
}
