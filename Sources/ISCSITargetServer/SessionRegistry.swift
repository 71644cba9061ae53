import Foundation
import NIOCore
import SCSITarget

/// The server's sessions across connections: TSIH assignment (unique, non-zero,
/// RFC 7143 §11.12.6) and session reinstatement for the same
/// (InitiatorName, ISID, TargetName) (RFC 7143 §6.3.5).
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
    private var usedTSIHs: Set<UInt16> = []
    private var nextTSIH: UInt16 = 1
    private var nextConnectionID: UInt64 = 1
    private var connections: [UInt64: any Channel] = [:]
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
            return old
        }
    }

    /// Forgets the session if `connectionID` still owns it; false when it was reinstated meanwhile.
    func remove(_ key: Key, connectionID: UInt64) -> Bool {
        lock.withLock {
            guard let entry = sessions[key], entry.connectionID == connectionID else { return false }
            sessions[key] = nil
            return true
        }
    }

    /// A connection opened (tracked for shutdown).
    func connectionOpened(_ id: UInt64, channel: any Channel) {
        lock.withLock { connections[id] = channel }
    }

    /// A connection closed.
    func connectionClosed(_ id: UInt64) {
        _ = lock.withLock { connections.removeValue(forKey: id) }
    }

    /// Every open connection.
    var allConnections: [any Channel] { lock.withLock { Array(connections.values) } }

    /// Number of live normal sessions.
    var count: Int { lock.withLock { sessions.count } }

    /// Every live session's channel (for shutdown).
    var channels: [any Channel] { lock.withLock { sessions.values.map(\.channel) } }
}
