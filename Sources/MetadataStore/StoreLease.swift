/// The node's lease on the store: it holds it while it has heard from the
/// store's quorum within `duration` (ARCHITECTURE.md "Shared context" rule 2).
/// Every request the leader answers counts: dqlite runs a Raft barrier before
/// serving a statement, so an answer means a quorum was reachable. Pure: the
/// clock is an argument.
public struct StoreLease: Hashable, Sendable {
    /// Whether the lease is held.
    public enum State: Hashable, Sendable {
        /// Quorum heard from within the lease time.
        case held
        /// Never heard from the quorum since start.
        case neverAcquired
        /// Last quorum contact is older than the lease time.
        case lapsed(since: ContinuousClock.Instant)
    }

    /// How long one quorum contact keeps the lease.
    public var duration: Duration
    /// Last time a request was answered by the leader.
    public private(set) var lastQuorumContact: ContinuousClock.Instant?

    public init(duration: Duration) { self.duration = duration }

    /// Records an answer from the leader at `instant` (never moves backwards).
    public mutating func quorumContact(at instant: ContinuousClock.Instant) {
        if let last = lastQuorumContact, last > instant { return }
        lastQuorumContact = instant
    }

    /// The lease state at `now`.
    public func state(at now: ContinuousClock.Instant) -> State {
        guard let last = lastQuorumContact else { return .neverAcquired }
        return now - last <= duration ? .held : .lapsed(since: last + duration)
    }

    /// True when `state(at:)` is `.held`.
    public func isHeld(at now: ContinuousClock.Instant) -> Bool { state(at: now) == .held }
}
