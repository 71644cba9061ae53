/// The primary's order for the writes of one sub-unit: overlapping writes run
/// one after another in arrival order, disjoint ones in parallel. A write
/// holds its range until every replica has it, so all replicas apply
/// overlapping writes in the same order (ARCHITECTURE.md "The data path").
///
/// A value with no clock or threads: ``admit(_:blocks:)`` says whether the
/// write may start now, ``finish(_:)`` which waiting writes may start next.
public struct WriteOrdering: Sendable {
    /// A write's ticket, unique within one ordering.
    public struct Ticket: Hashable, Sendable, Comparable {
        public var rawValue: UInt64
        public static func < (a: Ticket, b: Ticket) -> Bool { a.rawValue < b.rawValue }
    }

    private struct Entry {
        var ticket: Ticket
        var blocks: Range<UInt64>
        var started: Bool
    }

    /// Admitted writes not yet finished, in arrival order.
    private var entries: [Entry] = []
    private var nextTicket: UInt64 = 0

    public init() {}

    /// Writes admitted and not finished.
    public var count: Int { entries.count }

    /// Admits a write of `blocks`; `start` is true when no earlier write
    /// still in the ordering overlaps it.
    public mutating func admit(blocks: Range<UInt64>) -> (ticket: Ticket, start: Bool) {
        let ticket = Ticket(rawValue: nextTicket)
        nextTicket &+= 1
        let blocked = entries.contains { $0.blocks.overlaps(blocks) }
        entries.append(Entry(ticket: ticket, blocks: blocks, started: !blocked))
        return (ticket, !blocked)
    }

    /// Removes a finished (or abandoned) write and returns the waiting writes
    /// that may start now, oldest first.
    public mutating func finish(_ ticket: Ticket) -> [Ticket] {
        guard let at = entries.firstIndex(where: { $0.ticket == ticket }) else { return [] }
        entries.remove(at: at)
        var started: [Ticket] = []
        for i in entries.indices where !entries[i].started {
            let blocks = entries[i].blocks
            let blocked = entries[..<i].contains { $0.blocks.overlaps(blocks) }
            if !blocked {
                entries[i].started = true
                started.append(entries[i].ticket)
            }
        }
        return started
    }
}
