/// Which members are alive, judged from their lease renewals as the store
/// shows them (`node_leases.beats`, read through the quorum with this node's
/// own heartbeat). A pure value: time is an argument.
///
/// A member is **dead** once the same beat count has been read for longer
/// than ``deadAfter`` since this node first read it. That count was
/// committed before the first read that returned it, and the member's lease
/// runs from when it *sent* that renewal, so by then its lease has lapsed
/// and it serves nothing (ARCHITECTURE.md rule 2). `deadAfter` is the lease
/// and a half plus 100 ms: safety needs only the lease plus a margin for
/// clock-rate drift and the lease check interval (the bound the context
/// push waits for a silent member); the rest keeps a node whose heartbeat
/// was starved for a moment (a loaded machine) from being failed over, which
/// costs a resync. One slow beat does not make a member dead: a heartbeat
/// is sent every quarter lease.
///
/// Only reads that succeeded count. An observer that stalled (SIGSTOP, a
/// long pause) does not declare anyone dead from the gap it slept through:
/// the verdict needs two reads of the same count `deadAfter` apart, and
/// the gap between this node's own successive reads is not held against
/// the others.
public struct MemberLiveness: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// One member's renewal count as read from the store.
    public struct Beat: Hashable, Sendable {
        /// How many renewals the member committed.
        public var beats: UInt64
        /// Whether another node has fenced it (declared it dead in the store).
        public var fenced: Bool

        public init(beats: UInt64, fenced: Bool = false) {
            self.beats = beats
            self.fenced = fenced
        }
    }

    /// What a member looks like from here.
    public enum Verdict: Hashable, Sendable {
        /// Renewed its lease recently.
        case alive
        /// Has not renewed for a while, but its lease may still run.
        case suspected
        /// Its lease has lapsed: the others may act on its absence.
        case dead
        /// Fenced in the store: it serves nothing until it rejoins.
        case fenced
    }

    private struct Seen: Sendable {
        var beat: Beat
        /// When this node first read `beat.beats`, less the time this node
        /// itself was not reading (a stall of the observer is not the member's).
        var quietFor: Duration
    }

    /// How long a count must stay unchanged before its member is dead.
    public let deadAfter: Duration
    /// How long before a member is suspected (logged, not acted on).
    public var suspectAfter: Duration { deadAfter / 2 }
    /// The longest gap between two reads that counts in full.
    public let maximumReadGap: Duration
    private var seen: [NodeID: Seen] = [:]
    private var lastRead: Instant?

    /// `lease`: the members' lease time; `readInterval`: how often this node reads.
    public init(lease: Duration, readInterval: Duration) {
        self.deadAfter = lease + lease / 2 + .milliseconds(100)
        self.maximumReadGap = readInterval * 2
    }

    /// The counts just read at `now`, for every member (`self` included or not).
    /// Members missing from `beats` never renewed; they count from their first read.
    /// Returns the members whose verdict changed.
    @discardableResult
    public mutating func observe(_ beats: [NodeID: Beat], members: Set<NodeID>, at now: Instant) -> [NodeID: Verdict] {
        let before = Dictionary(uniqueKeysWithValues: seen.keys.map { ($0, verdict(of: $0)) })
        // The member is charged for at most `maximumReadGap` of the time
        // between two reads: a longer gap is this node's own stall.
        let elapsed = lastRead.map { min(now - $0, maximumReadGap) } ?? .zero
        lastRead = now
        var next: [NodeID: Seen] = [:]
        for node in members {
            let beat = beats[node] ?? Beat(beats: 0)
            if var old = seen[node], old.beat.beats == beat.beats {
                old.quietFor += elapsed
                old.beat.fenced = beat.fenced
                next[node] = old
            } else {
                next[node] = Seen(beat: beat, quietFor: .zero)
            }
        }
        seen = next
        var changed: [NodeID: Verdict] = [:]
        for node in members where before[node] != verdict(of: node) { changed[node] = verdict(of: node) }
        return changed
    }

    /// The verdict on `node` as of the last read; alive for a node not seen.
    public func verdict(of node: NodeID) -> Verdict {
        guard let seen = seen[node] else { return .alive }
        if seen.beat.fenced { return .fenced }
        if seen.quietFor > deadAfter { return .dead }
        if seen.quietFor > suspectAfter { return .suspected }
        return .alive
    }

    /// The beat count last read for `node`.
    public func beat(of node: NodeID) -> Beat? { seen[node]?.beat }

    /// Members dead or fenced as of the last read.
    public var absent: Set<NodeID> {
        Set(seen.keys.filter { [.dead, .fenced].contains(verdict(of: $0)) })
    }
}
