import NIOCore

/// A typed store failure as callers see it.
public struct MetadataStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The failure kind.
    public enum Code: Hashable, Sendable {
        /// The node answered FAILURE: an SQLite extended code (or dqlite/raft
        /// code) and message. Constraint violations, syntax errors, etc.
        case sql(code: UInt64, message: String)
        /// No leader could be reached within the retry deadline: the store has
        /// no quorum or every seed is down. Do not acknowledge context changes.
        case unavailable(lastError: String)
        /// A row did not have the expected column or type.
        case decoding(String)
        /// The server answered with a response type that does not fit.
        case protocolViolation(String)
        /// The members reached hold another cluster secret: they refused
        /// this client (or could not prove theirs). Not retried.
        case refused(String)
    }

    /// The failure kind.
    public var code: Code

    public init(_ code: Code) { self.code = code }

    public var description: String {
        switch code {
        case .sql(let code, let message): "store SQL error \(code): \(message)"
        case .unavailable(let last): "store unavailable: \(last)"
        case .decoding(let what): "store row decoding: \(what)"
        case .protocolViolation(let what): "store protocol violation: \(what)"
        case .refused(let what):
            "the store refused this node's cluster secret (every node needs the same cluster.secret_file): \(what)"
        }
    }

    /// SQLite primary result code (low byte of the extended code).
    public var sqlitePrimaryCode: UInt64? {
        if case .sql(let code, _) = code { return code & 0xff }
        return nil
    }

    /// True for a UNIQUE/PRIMARY KEY/CHECK/FOREIGN KEY violation (SQLITE_CONSTRAINT).
    public var isConstraintViolation: Bool { sqlitePrimaryCode == 19 }
}

/// What to do after a failed attempt: a pure function of the error, tested as a table.
enum RetryDecision: Hashable, Sendable {
    /// Drop the connection, find the leader again, retry the whole operation.
    case reconnectAndRetry
    /// Keep the connection, back off and retry the whole operation (SQLITE_BUSY).
    case retry
    /// Give the error to the caller.
    case fail
}

/// dqlite's failure codes that mean "ask someone else" (src/lib/... translate.h):
/// SQLITE_IOERR_NOT_LEADER = SQLITE_IOERR | (40 << 8),
/// SQLITE_IOERR_LEADERSHIP_LOST = SQLITE_IOERR | (41 << 8).
enum DqliteFailureCode {
    static let notLeader: UInt64 = 10 | (40 << 8)
    static let leadershipLost: UInt64 = 10 | (41 << 8)
    static let busy: UInt64 = 5
    static let locked: UInt64 = 6

    static func decision(code: UInt64, message: String) -> RetryDecision {
        let lowered = message.lowercased()
        if code == notLeader || code == leadershipLost || lowered.contains("not leader")
            || lowered.contains("leadership lost") || lowered.contains("no leader")
            // raft_strerror texts for RAFT_NOTLEADER / RAFT_LEADERSHIPLOST (membership calls)
            || lowered.contains("not the leader") || lowered.contains("lost leadership")
        {
            return .reconnectAndRetry
        }
        if code & 0xff == busy || code & 0xff == locked || lowered.contains("configuration change")
            || lowered.contains("in progress")
        {
            return .retry
        }
        // A disk I/O error on the leader (its log could not be written, e.g.
        // while it is being shut down) also means: find the leader again.
        if code & 0xff == 10 { return .reconnectAndRetry }
        return .fail
    }

    static func decision(for error: Error) -> RetryDecision {
        switch error {
        case let error as MetadataStoreError:
            if case .sql(let code, let message) = error.code { return decision(code: code, message: message) }
            if case .protocolViolation = error.code { return .reconnectAndRetry }
            return .fail
        case is DqliteConnectionError, is DqliteWireError, is IOError, is ChannelError:
            return .reconnectAndRetry
        case is LeaderNotFound:
            return .reconnectAndRetry
        default:
            return .fail
        }
    }
}

/// Internal: no seed named a reachable leader in this round.
struct LeaderNotFound: Error, CustomStringConvertible {
    var detail: String
    var description: String { "no leader: \(detail)" }
}

/// Exponential backoff with full jitter; randomness is an argument.
struct Backoff: Hashable, Sendable {
    /// First delay.
    var initial: Duration
    /// Cap on a single delay.
    var maximum: Duration
    private(set) var attempt = 0

    init(initial: Duration = .milliseconds(5), maximum: Duration = .milliseconds(100)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The next delay; `unit` in 0...1 scales it (jitter), tests pass 1.
    mutating func next(unit: Double) -> Duration {
        let shift = min(attempt, 16)
        attempt += 1
        let raw = initial * (1 << shift)
        let capped = raw > maximum ? maximum : raw
        return capped * max(0.1, min(1, unit))
    }
}
