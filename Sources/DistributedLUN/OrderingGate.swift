import ClusterModel
import Synchronization

/// The async shell around one sub-unit's ``WriteOrdering``: ``enter(_:)``
/// suspends until no earlier overlapping write holds the range, ``leave(_:)``
/// starts the writes it was holding back.
final class OrderingGate: Sendable {
    private struct State: ~Copyable {
        var ordering = WriteOrdering()
        var waiting: [WriteOrdering.Ticket: CheckedContinuation<Void, Never>] = [:]
        /// Started before their waiter registered.
        var startedEarly: Set<WriteOrdering.Ticket> = []
    }

    private let state = Mutex(State())

    /// Ranges admitted and not yet left (running or waiting).
    var count: Int { state.withLock { $0.ordering.count } }

    /// Waits for the range `blocks`; returns the ticket to hand to ``leave(_:)``.
    func enter(_ blocks: Range<UInt64>) async -> WriteOrdering.Ticket {
        let (ticket, start) = state.withLock { $0.ordering.admit(blocks: blocks) }
        if start { return ticket }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.startedEarly.remove(ticket) != nil { return true }
                s.waiting[ticket] = continuation
                return false
            }
            if now { continuation.resume() }
        }
        return ticket
    }

    /// Releases a ticket's range.
    func leave(_ ticket: WriteOrdering.Ticket) {
        let resume: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.ordering.finish(ticket).compactMap { next in
                if let c = s.waiting.removeValue(forKey: next) { return c }
                s.startedEarly.insert(next)
                return nil
            }
        }
        for continuation in resume { continuation.resume() }
    }

    /// Runs `body` holding `blocks`.
    func withRange<T>(_ blocks: Range<UInt64>, _ body: () async -> T) async -> T {
        let ticket = await enter(blocks)
        defer { leave(ticket) }
        return await body()
    }
}
