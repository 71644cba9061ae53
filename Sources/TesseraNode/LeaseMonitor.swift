/// The node's lease on the metadata store's quorum as a pure state machine
/// (ARCHITECTURE.md "Shared context" rule 2): the lease is held while a heartbeat answered by the
/// store leader was *sent* less than `lease` ago (dqlite serves a statement
/// only after a Raft barrier, so an answer proves a quorum). Time is an
/// argument; the shell feeds it heartbeat outcomes and ticks and carries out
/// the returned actions (log lines).
struct LeaseMonitor: Sendable {
    typealias Instant = ContinuousClock.Instant

    /// Where the lease stands.
    enum State: Hashable, Sendable {
        /// Started at `since`; no quorum contact yet, lease time not yet over.
        case acquiring(since: Instant)
        /// Last successful heartbeat was sent at `lastContact`, within the lease.
        case held(lastContact: Instant)
        /// No quorum contact for longer than the lease; lapsed at `since`.
        case lapsed(lastContact: Instant?, since: Instant)
    }

    /// What the shell must do after an input.
    enum Action: Hashable, Sendable {
        /// Nothing changed that anyone needs to hear about.
        case none
        /// The lease was acquired for the first time since start.
        case reportAcquired
        /// The lease lapsed: log it (warning), health turns "lapsed", context
        /// changes are refused until it is regained.
        case reportLapsed(lastContact: Instant?)
        /// The lease is held again after a lapse of `downFor`.
        case reportRestored(downFor: Duration)
    }

    /// How long one quorum contact keeps the lease.
    let lease: Duration
    /// Current state.
    private(set) var state: State

    init(lease: Duration, startedAt: Instant) {
        self.lease = lease
        self.state = .acquiring(since: startedAt)
    }

    /// A heartbeat sent at `sentAt` was answered by the leader (at `now`).
    mutating func quorumReached(sentAt: Instant, now: Instant) -> Action {
        // An answer that arrives after the lease it would renew has run out
        // renews nothing: the quorum may have moved on since it was sent.
        switch state {
        case .acquiring:
            guard now - sentAt <= lease else { return tick(at: now) }
            state = .held(lastContact: sentAt)
            return .reportAcquired
        case .held(let last):
            if sentAt > last { state = .held(lastContact: sentAt) }
            return tick(at: now)
        case .lapsed(_, let since):
            guard now - sentAt <= lease else { return .none }
            state = .held(lastContact: sentAt)
            return .reportRestored(downFor: now - since)
        }
    }

    /// Time passes (also called after a failed heartbeat).
    mutating func tick(at now: Instant) -> Action {
        switch state {
        case .acquiring(let since):
            guard now - since > lease else { return .none }
            state = .lapsed(lastContact: nil, since: since + lease)
            return .reportLapsed(lastContact: nil)
        case .held(let last):
            guard now - last > lease else { return .none }
            state = .lapsed(lastContact: last, since: last + lease)
            return .reportLapsed(lastContact: last)
        case .lapsed:
            return .none
        }
    }

    /// Whether a context change may be acknowledged at `now`: only while the
    /// lease is held *and* has not run out since the last tick.
    func mayChangeContext(at now: Instant) -> Bool {
        if case .held(let last) = state { return now - last <= lease }
        return false
    }

    /// "held", "acquiring" or "lapsed" as of `now` (health endpoint).
    func label(at now: Instant) -> String {
        switch state {
        case .acquiring: return "acquiring"
        case .held: return mayChangeContext(at: now) ? "held" : "lapsed"
        case .lapsed: return "lapsed"
        }
    }

    /// Time since the last quorum contact, if there was one.
    func sinceLastContact(at now: Instant) -> Duration? {
        switch state {
        case .acquiring: return nil
        case .held(let last): return now - last
        case .lapsed(let last, _): return last.map { now - $0 }
        }
    }
}
