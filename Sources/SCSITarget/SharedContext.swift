import SCSIWire

/// The names that identify an I_T nexus wherever it is seen (SAM-5 §4.7):
/// its initiator port and target port names. An SPC-2 reservation is held
/// by one, and a change decided on one node names its sender by it, so that
/// every other node can compare its own nexuses against it.
public struct NexusName: Sendable, Hashable, Codable, CustomStringConvertible {
    public var initiatorPort: String
    public var targetPort: String

    public init(initiatorPort: String, targetPort: String) {
        self.initiatorPort = initiatorPort
        self.targetPort = targetPort
    }

    public init(_ nexus: ITNexus) {
        self.init(initiatorPort: nexus.initiatorPortName, targetPort: nexus.targetPortName)
    }

    /// Whether `nexus` is the nexus these names stand for.
    public func names(_ nexus: ITNexus) -> Bool {
        nexus.initiatorPortName == initiatorPort && nexus.targetPortName == targetPort
    }

    public var description: String { "\(initiatorPort) -> \(targetPort)" }
}

/// The part of a logical unit's context that belongs to the logical unit,
/// not to the node a command came through: persistent reservations, the
/// SPC-2 reservation holder and the mode page values. In a cluster it is one
/// value in the store, versioned by the LU's `context_version`.
public struct SharedLUNState: Sendable, Hashable, Codable {
    public var persistent: PersistentReservations
    public var spc2Holder: NexusName?
    public var modePages: ModePageValues

    public init(
        persistent: PersistentReservations = PersistentReservations(), spc2Holder: NexusName? = nil,
        modePages: ModePageValues = .defaults
    ) {
        self.persistent = persistent
        self.spc2Holder = spc2Holder
        self.modePages = modePages
    }
}

/// What a context change does besides replacing the state, on every node:
/// unit attentions for the nexuses there (rule 3: per I_T nexus, cluster
/// wide) and task aborts. A node applies the effects to its own nexuses and
/// tasks only; names decide which ones.
public enum ContextEffect: Sendable, Hashable, Codable {
    /// Queue `reason` for every nexus except the one named by `except`.
    case unitAttention(SenseReason, except: NexusName?)
    /// Queue `reason` for the nexuses `port` stands for, except the sender
    /// (SPC-4 §5.13: the unit attentions of PREEMPT, CLEAR, RELEASE).
    case registrantUnitAttention(SenseReason, port: RegistrantPort, except: NexusName)
    /// Abort the tasks of the nexuses these ports stand for (PREEMPT AND
    /// ABORT, SPC-4 §5.13.11.2.6), except the task making the change.
    case abortRegistrants([RegistrantPort])
    /// Abort every task on the logical unit (LOGICAL UNIT RESET, SAM-5 §6.3.3;
    /// CLEAR TASK SET, SAM-5 §7.5). With `clearedBy`, every other nexus whose
    /// tasks were aborted gets COMMANDS CLEARED BY ANOTHER INITIATOR (TAS = 0).
    case abortAll(clearedBy: NexusName?)
}

/// One committed context change: the version it made, the state after it,
/// and its effects. This is what the committing node pushes to the others.
public struct ContextChange: Sendable, Hashable, Codable {
    public var version: UInt64
    public var state: SharedLUNState
    public var effects: [ContextEffect]

    public init(version: UInt64, state: SharedLUNState, effects: [ContextEffect]) {
        self.version = version
        self.state = state
        self.effects = effects
    }
}

/// The shared state at a version.
public struct VersionedLUNState: Sendable, Hashable {
    public var version: UInt64
    public var state: SharedLUNState

    public init(version: UInt64, state: SharedLUNState) {
        self.version = version
        self.state = state
    }
}

/// The effects recorded with one version (a node that missed a push reads them).
public struct RecordedEffects: Sendable, Hashable {
    public var version: UInt64
    public var effects: [ContextEffect]

    public init(version: UInt64, effects: [ContextEffect]) {
        self.version = version
        self.effects = effects
    }
}

/// How a compare-and-set commit ended.
public enum ContextCommit: Sendable, Hashable {
    /// Written; the LU is now at `version`.
    case committed(version: UInt64)
    /// The store's version is no longer the expected one: re-read and re-decide.
    case conflict
}

/// Where one logical unit's shared context is kept in a cluster (the
/// replicated store). Every call is one store transaction.
public protocol SharedContextStore: Sendable {
    /// The committed state and its version.
    func load() async throws -> VersionedLUNState
    /// Writes `change` (its state, its effects, version `expected + 1`) if the
    /// store is still at `expected`, recording `requestID` so a retry after an
    /// unknown outcome is harmless (a retried, already applied request
    /// answers `.committed`).
    func commit(_ change: ContextChange, expected: UInt64, requestID: String) async throws -> ContextCommit
    /// The state now and the effects of every version after `version` still kept, oldest first.
    func changes(after version: UInt64) async throws -> (current: VersionedLUNState, effects: [RecordedEffects])
}

/// Carries a committed change to the other live nodes (the peer port).
public protocol SharedContextPeers: Sendable {
    /// Returns when every other live node has acknowledged `change` (applied
    /// it, its aborted tasks ended) or can no longer hold its lease
    /// (ARCHITECTURE.md "Shared context" rule 1).
    func propagate(_ change: ContextChange) async
}
