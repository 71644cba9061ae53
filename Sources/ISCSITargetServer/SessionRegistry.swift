import Foundation
import NIOCore
import SCSITarget

/// The server's sessions across connections: TSIH assignment (unique, non-zero,
/// RFC 7143 §11.12.6) and session reinstatement for the same
/// (InitiatorName, ISID, TargetName) (RFC 7143 §6.3.5); and the node's
/// connections, bounded in number overall and per initiator address.
final class SessionRegistry: @unchecked Sendable {
    /// What names a session: the initiator port (name + ISID) and the target.
    struct Key: Hashable, Sendable {
        var initiatorName: String
        var isid: UInt64
        var targetName: String
    }

    /// A live normal session.
    struct Entry: Sendable {
        var tsih: UInt16
        var connectionID: UInt64
        var channel: any Channel
        var nexus: ITNexus
        var executor: any SCSITaskExecutor
    }

    private let lock = NSLock()
    private var sessions: [Key: Entry] = [:]
    /// When each live session logged in, by connection id.
    private var loggedInAt: [UInt64: Date] = [:]
    private var usedTSIHs: Set<UInt16> = []
    private var nextTSIH: UInt16 = 1
    private var nextConnectionID: UInt64 = 1
    private var connections: [UInt64: (channel: any Channel, address: String)] = [:]
    /// Open connections per remote IP address.
    private var connectionsPerAddress: [String: Int] = [:]
    /// The log line about refused connections, at most once a second.
    private var refusalLog = RateLimitedLog(interval: .seconds(1))
    /// The nexus-loss cleanup of each session key still running, with its id.
    private var cleanups: [Key: (id: UInt64, task: Task<Void, Never>)] = [:]
    private var nextCleanupID: UInt64 = 1

    /// Runs the nexus-loss cleanup of a session that ended or was reinstated,
    /// after any earlier cleanup of the same key; a login of that key waits
    /// for it (``pendingCleanup(_:)``).
    @discardableResult
    func startCleanup(_ key: Key, _ body: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        lock.withLock {
            let previous = cleanups[key]?.task
            let id = nextCleanupID
            nextCleanupID &+= 1
            let task = Task {
                await previous?.value
                await body()
                self.cleanupFinished(key, id: id)
            }
            cleanups[key] = (id, task)
            return task
        }
    }

    /// The running cleanup of `key`, if any.
    func pendingCleanup(_ key: Key) -> Task<Void, Never>? {
        lock.withLock { cleanups[key]?.task }
    }

    private func cleanupFinished(_ key: Key, id: UInt64) {
        lock.withLock {
            if cleanups[key]?.id == id { cleanups[key] = nil }
        }
    }

    /// A fresh connection id.
    func makeConnectionID() -> UInt64 {
        lock.withLock {
            defer { nextConnectionID &+= 1 }
            return nextConnectionID
        }
    }

    /// Reserves a TSIH for a login that may create a session; nil when all 65535 are in use.
    func reserveTSIH() -> UInt16? {
        lock.withLock {
            guard usedTSIHs.count < Int(UInt16.max) else { return nil }
            while usedTSIHs.contains(nextTSIH) || nextTSIH == 0 { nextTSIH &+= 1 }
            let tsih = nextTSIH
            usedTSIHs.insert(tsih)
            nextTSIH &+= 1
            return tsih
        }
    }

    /// Gives a TSIH back when its connection ends.
    func releaseTSIH(_ tsih: UInt16) {
        _ = lock.withLock { usedTSIHs.remove(tsih) }
    }

    /// Records a new normal session; returns the session it reinstates, if any
    /// (the caller closes that connection and reports its nexus lost).
    func register(_ key: Key, _ entry: Entry) -> Entry? {
        lock.withLock {
            let old = sessions[key]
            sessions[key] = entry
            if let old { loggedInAt[old.connectionID] = nil }
            loggedInAt[entry.connectionID] = Date()
            return old
        }
    }

    /// Forgets the session if `connectionID` still owns it; false when it was reinstated meanwhile.
    func remove(_ key: Key, connectionID: UInt64) -> Bool {
        lock.withLock {
            guard let entry = sessions[key], entry.connectionID == connectionID else { return false }
            sessions[key] = nil
            loggedInAt[connectionID] = nil
            return true
        }
    }

    /// Why a connection was refused at accept.
    enum ConnectionRefusal: Equatable, Sendable, CustomStringConvertible {
        /// `max_connections` reached.
        case nodeFull(limit: Int)
        /// `max_connections_per_initiator_address` reached for this address.
        case addressFull(limit: Int)

        var description: String {
            switch self {
            case .nodeFull(let limit): "the node holds max_connections (\(limit)) connections"
            case .addressFull(let limit):
                "the initiator address holds max_connections_per_initiator_address (\(limit)) connections"
            }
        }
    }

    /// Counts a new connection from `address` (its IP) unless a bound is reached;
    /// a refused one is not recorded (it takes no slot, no TSIH).
    func admitConnection(
        _ id: UInt64, channel: any Channel, address: String, limits: ISCSIServerLimits
    ) -> ConnectionRefusal? {
        lock.withLock {
            if connections.count >= limits.maxConnections { return .nodeFull(limit: limits.maxConnections) }
            let fromAddress = connectionsPerAddress[address, default: 0]
            if fromAddress >= limits.maxConnectionsPerInitiatorAddress {
                return .addressFull(limit: limits.maxConnectionsPerInitiatorAddress)
            }
            connections[id] = (channel, address)
            connectionsPerAddress[address] = fromAddress + 1
            return nil
        }
    }

    /// Whether to log a refusal now, and how many went unlogged since the last line.
    func shouldLogRefusal(now: ContinuousClock.Instant = .now) -> (log: Bool, suppressed: Int) {
        lock.withLock { refusalLog.attempt(now: now) }
    }

    /// A connection closed (a refused one was never counted: nothing happens).
    func connectionClosed(_ id: UInt64) {
        lock.withLock {
            guard let closed = connections.removeValue(forKey: id) else { return }
            let left = connectionsPerAddress[closed.address, default: 1] - 1
            connectionsPerAddress[closed.address] = left > 0 ? left : nil
        }
    }

    /// Every open connection.
    var allConnections: [any Channel] { lock.withLock { connections.values.map(\.channel) } }

    /// Open connections, and those from `address`.
    func connectionCount(from address: String? = nil) -> Int {
        lock.withLock { address.map { connectionsPerAddress[$0, default: 0] } ?? connections.count }
    }

    /// TSIHs in use (sessions logged in, or logging in on a leading connection that has its TSIH).
    var tsihsInUse: Int { lock.withLock { usedTSIHs.count } }

    /// Number of live normal sessions.
    var count: Int { lock.withLock { sessions.count } }

    /// Every live session, by TSIH (the tag is the nexus' portal group, which
    /// the connection's portal gave it).
    func snapshot() -> [ISCSISessionInfo] {
        lock.withLock {
            sessions.map { key, entry in
                ISCSISessionInfo(
                    tsih: entry.tsih, initiatorName: key.initiatorName, isid: key.isid, targetName: key.targetName,
                    portalGroupTag: entry.nexus.targetPortGroup,
                    portal: Self.text(entry.channel.localAddress), initiatorAddress: Self.text(entry.channel.remoteAddress),
                    loggedInAt: loggedInAt[entry.connectionID] ?? Date())
            }.sorted { $0.tsih < $1.tsih }
        }
    }

    /// The channel of the session with `tsih`, if one is live.
    func channel(tsih: UInt16) -> (any Channel)? {
        lock.withLock { sessions.values.first { $0.tsih == tsih }?.channel }
    }

    private static func text(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "?" }
        let host = ip.contains(":") ? "[\(ip)]" : ip
        return address.port.map { "\(host):\($0)" } ?? host
    }

    /// Every live session's channel (for shutdown).
    var channels: [any Channel] { lock.withLock { sessions.values.map(\.channel) } }
}

/// At most one log line per `interval`; counts what it held back so the next
/// line can say how many were suppressed. A host opening connections in a
/// loop cannot fill the log.
struct RateLimitedLog: Sendable {
    let interval: Duration
    private var lastLogged: ContinuousClock.Instant?
    private var suppressed = 0

    init(interval: Duration) { self.interval = interval }

    /// Whether to log at `now`; when so, how many were suppressed before it.
    mutating func attempt(now: ContinuousClock.Instant) -> (log: Bool, suppressed: Int) {
        if let lastLogged, now - lastLogged < interval {
            suppressed += 1
            return (false, suppressed)
        }
        lastLogged = now
        defer { suppressed = 0 }
        return (true, suppressed)
    }
}
