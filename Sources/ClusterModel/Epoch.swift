/// A number that grows on every change of a sub-unit's replica set. Every
/// request between nodes carries the sender's epoch for the sub-unit, and a
/// replica accepts only its current one (fencing, ARCHITECTURE.md "Words").
public struct Epoch: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// The epoch of a freshly placed sub-unit.
    public static let initial = Epoch(1)

    /// The epoch after one more replica-set change.
    public var next: Epoch { Epoch(rawValue &+ 1) }

    public static func < (lhs: Epoch, rhs: Epoch) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "e\(rawValue)" }
}

/// Names a distributed LUN cluster-wide in peer requests: the 64-bit value of
/// its NAA identifier, the same on every node.
public struct LUNID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public var description: String { "lun-" + String(rawValue, radix: 16) }
}

/// One sub-unit of one LUN.
public struct SubUnitID: Hashable, Sendable, CustomStringConvertible {
    /// The LUN.
    public var lun: LUNID
    /// Index of the sub-unit in the LUN's block space, from 0.
    public var index: UInt32

    public init(lun: LUNID, index: UInt32) {
        self.lun = lun
        self.index = index
    }

    public var description: String { "\(lun)/\(index)" }
}
