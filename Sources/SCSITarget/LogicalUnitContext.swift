import SCSIWire
import Synchronization

/// Which I_T nexuses a new unit attention condition is established for (SAM-5 §5.14).
public enum UnitAttentionScope: Sendable, Hashable {
    /// Every nexus the logical unit knows.
    case allNexuses
    /// Every known nexus except this one (the one that caused the change).
    case allExcept(ITNexus)
    /// Only this nexus.
    case only(ITNexus)
}

/// Whether a command may run, decided from the context in one step (one
/// round trip for a replicated store).
public enum CommandAdmission: Sendable, Hashable {
    /// Run it.
    case proceed
    /// Report this unit attention (CHECK CONDITION); it has been consumed.
    case unitAttention(SenseReason)
    /// Another nexus holds a reservation the command conflicts with.
    case reservationConflict
    /// No shared state is loaded (nothing was consumed): ``LogicalUnitContext/ready()`` loads it.
    case notLoaded
}

/// The SCSI state of a logical unit as the SCSI layer uses it: unit
/// attention queues per I_T nexus (this node's nexuses) and the shared state
/// (persistent and SPC-2 reservations, mode pages), read from a cache and
/// changed only through ``change(_:)``, which commits a change everywhere
/// before it returns (ARCHITECTURE.md "Shared context" rules 1 and 3).
///
/// What every command asks (``admit(_:conflictClass:reportUnitAttention:requireLoaded:)``,
/// ``modePages()``) is answered synchronously from memory: a command costs no
/// suspension or executor hop for its context. Loading and changing the
/// state are async.
public protocol LogicalUnitContext: AnyObject, Sendable {
    /// Loads the shared state if it is not loaded yet; false when it cannot
    /// be read now (the node must not serve with an empty context in place of the LU's).
    func ready() async -> Bool
    /// A nexus logged in. A nexus seen for the first time since start gets
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (SAM-5 §5.14).
    func nexusEstablished(_ nexus: ITNexus) async
    /// A nexus went away: its unit attention queue is forgotten (releasing its
    /// SPC-2 reservation is a change the logical unit makes).
    func nexusLost(_ nexus: ITNexus) async
    /// The oldest pending unit attention for `nexus`, removed when `consume`.
    /// Registers a nexus seen for the first time (as ``nexusEstablished(_:)``).
    func unitAttention(for nexus: ITNexus, consume: Bool) -> SenseReason?
    /// Queues `reason` for this node's nexuses in `scope`.
    func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) async
    /// Admits a command from `nexus` in one step: reports (and consumes) the
    /// oldest unit attention when `reportUnitAttention` (SAM-5 §5.14), then
    /// checks reservations for `conflictClass` (SPC-2 §5.5.1, SPC-4 §5.13.1).
    /// With `requireLoaded` and no shared state loaded, returns ``CommandAdmission/notLoaded``
    /// and consumes nothing; without it, decides on the default (empty) state.
    func admit(
        _ nexus: ITNexus, conflictClass: ReservationConflictClass, reportUnitAttention: Bool, requireLoaded: Bool
    ) -> CommandAdmission
    /// The shared state as this node serves it.
    func shared() -> SharedLUNState
    /// Current mode page values.
    func modePages() -> ModePageValues
    /// Decides a change on the current shared state and commits it: when it
    /// returns, the change is durable and every node serves it (its unit
    /// attentions queued, the tasks it aborts ended). A conflicting change
    /// committed meanwhile by another node makes `decide` run again on the
    /// newer state. Throws NOT READY, ASYMMETRIC ACCESS STATE TRANSITION when
    /// it cannot be committed (no lease, no store), leaving the state as it was.
    /// `task` is the command making the change (nil for task management and
    /// nexus loss): no abort here ends or awaits it, or it would wait for itself.
    func change<R: Sendable>(
        sparing task: TaskKey?, _ decide: @Sendable (inout SharedLUNState) throws -> (R, [ContextEffect])
    ) async throws -> R
    /// Who marks (and, when asked, awaits) the tasks a change aborts: the target device.
    func setTaskAborter(_ aborter: @escaping TaskAborter)
    /// A change committed through another node; returns once it is applied
    /// here and the tasks it aborts have ended.
    func receive(_ change: ContextChange) async
    /// Brings the cache up to at least `version` (read from the store);
    /// false when the store could not be read.
    func catchUp(to version: UInt64) async -> Bool
    /// The version this node serves.
    func version() -> UInt64
}

/// Marks the tasks a ``ContextEffect`` aborts, except `sparing` (the task
/// making the change on this node, if any); with `wait`, returns once they
/// have ended.
public typealias TaskAborter = @Sendable (_ effect: ContextEffect, _ sparing: TaskKey?, _ wait: Bool) async -> Void

/// Unit attention queues of the nexuses one node knows (SAM-5 §5.14), as a value.
struct UnitAttentionQueues: Sendable {
    /// Pending unit attentions per known nexus, oldest first.
    private var queues: [ITNexus: [SenseReason]] = [:]
    /// SAM-5 does not bound the queue; a bound keeps a silent nexus from growing it forever.
    static let maximumQueued = 16

    mutating func established(_ nexus: ITNexus) {
        if queues[nexus] == nil { queues[nexus] = [.powerOnResetOrBusDeviceResetOccurred] }
    }

    mutating func lost(_ nexus: ITNexus) {
        // The nexus is forgotten: when it returns it is new and gets POWER ON,
        // RESET, OR BUS DEVICE RESET OCCURRED (29/00), which SAM-5 allows for
        // I_T nexus loss and which libiscsi's helpers retry through.
        queues[nexus] = nil
    }

    mutating func next(for nexus: ITNexus, consume: Bool) -> SenseReason? {
        guard var queue = queues[nexus] else {
            queues[nexus] = consume ? [] : [.powerOnResetOrBusDeviceResetOccurred]
            return .powerOnResetOrBusDeviceResetOccurred
        }
        guard let first = queue.first else { return nil }
        if consume {
            queue.removeFirst()
            queues[nexus] = queue
        }
        return first
    }

    mutating func establish(_ reason: SenseReason, scope: UnitAttentionScope) {
        for nexus in Array(queues.keys) {
            switch scope {
            case .allNexuses: break
            case .allExcept(let n): if n == nexus { continue }
            case .only(let n): if n != nexus { continue }
            }
            add(reason, to: nexus)
        }
        if case .only(let n) = scope, queues[n] == nil { queues[n] = [reason] }
    }

    /// The unit attentions of a committed change, for this node's nexuses.
    mutating func apply(_ effect: ContextEffect) {
        switch effect {
        case .unitAttention(let reason, let except):
            for nexus in Array(queues.keys) where !(except?.names(nexus) ?? false) { add(reason, to: nexus) }
        case .registrantUnitAttention(let reason, let port, let except):
            for nexus in Array(queues.keys) where port.matches(nexus) && !except.names(nexus) { add(reason, to: nexus) }
        case .abortRegistrants, .abortAll:
            break
        }
    }

    private mutating func add(_ reason: SenseReason, to nexus: ITNexus) {
        var queue = queues[nexus] ?? []
        // A reset supersedes everything queued before it (SAM-5 §5.14: highest precedence).
        if reason.code.asc == 0x29 { queue.removeAll() }
        if !queue.contains(reason) && queue.count < Self.maximumQueued { queue.append(reason) }
        queues[nexus] = queue
    }
}

extension ContextEffect {
    /// Whether the effect aborts tasks (the target device carries it out).
    var abortsTasks: Bool {
        switch self {
        case .abortRegistrants, .abortAll: true
        case .unitAttention, .registrantUnitAttention: false
        }
    }
}

/// ``LogicalUnitContext`` over a ``SharedContextStore``: this node's unit
/// attention queues, and a cache of the shared state keyed by its version.
///
/// A change is decided on the cache and committed with a compare-and-set on
/// the version; a conflict (another node committed first) reads the newer
/// state and its effects and decides again. Only a committed change reaches
/// the cache, so memory never holds what the store does not. Versions are
/// applied in order and once: a push, a catch-up and this node's own commit
/// can arrive in any order. With `peers`, the change is pushed to every other
/// node before ``change(_:)`` returns.
///
/// A single node uses an ``InMemoryContextStore`` and no peers.
public actor SharedLogicalUnitContext: LogicalUnitContext {
    /// What commands read: this node's unit attention queues and the cached
    /// shared state. A `Mutex`, not actor state, so that admission is
    /// synchronous; the actor still serialises loading, changes and pushes.
    /// A new version and its unit attentions are published in one critical
    /// section, so no command sees the one without the other.
    private struct Served {
        var queues = UnitAttentionQueues()
        var cache: VersionedLUNState?
    }
    private nonisolated let served = Mutex(Served())
    private nonisolated var cache: VersionedLUNState? { served.withLock { $0.cache } }
    private let store: any SharedContextStore
    private let peers: (any SharedContextPeers)?
    private let mayChange: @Sendable () -> Bool
    /// A reference box: a function value kept directly in a `Mutex` gains
    /// conversion thunks on every `withLock`.
    private final class AborterBox: Sendable {
        let aborter: TaskAborter
        init(_ aborter: @escaping TaskAborter) { self.aborter = aborter }
    }
    private nonisolated let aborterBox = Mutex<AborterBox?>(nil)
    private var aborter: TaskAborter? { aborterBox.withLock { $0 }?.aborter }
    /// Serialises this node's changes (each is decided and committed before the next).
    private let changes = AsyncLock()
    /// How many times a change is decided again after conflicts before it gives up (retryable).
    static let maximumConflicts = 32

    /// `mayChange`: whether the node may commit now (it holds its store lease).
    public init(
        store: any SharedContextStore, peers: (any SharedContextPeers)? = nil,
        mayChange: @escaping @Sendable () -> Bool = { true }
    ) {
        self.store = store
        self.peers = peers
        self.mayChange = mayChange
    }

    /// A single node's context in memory, optionally saving persistent
    /// reservations in `reservationStore` under `key` (APTPL, SPC-4 §5.13.5).
    public init(reservationStore: (any ReservationStateStore)? = nil, key: String = "") {
        self.init(store: InMemoryContextStore(reservationStore: reservationStore, key: key))
    }

    public nonisolated func setTaskAborter(_ aborter: @escaping TaskAborter) { aborterBox.withLock { $0 = AborterBox(aborter) } }

    public func ready() async -> Bool {
        if cache != nil { return true }
        guard let loaded = try? await store.load() else { return false }
        served.withLock { if $0.cache == nil { $0.cache = loaded } }
        return true
    }

    public nonisolated func version() -> UInt64 { cache?.version ?? 0 }

    public nonisolated func shared() -> SharedLUNState { cache?.state ?? SharedLUNState() }

    public nonisolated func modePages() -> ModePageValues { cache?.state.modePages ?? .defaults }

    public func nexusEstablished(_ nexus: ITNexus) { served.withLock { $0.queues.established(nexus) } }

    public func nexusLost(_ nexus: ITNexus) { served.withLock { $0.queues.lost(nexus) } }

    public nonisolated func unitAttention(for nexus: ITNexus, consume: Bool) -> SenseReason? {
        served.withLock { $0.queues.next(for: nexus, consume: consume) }
    }

    public func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) {
        served.withLock { $0.queues.establish(reason, scope: scope) }
    }

    public nonisolated func admit(
        _ nexus: ITNexus, conflictClass: ReservationConflictClass, reportUnitAttention: Bool, requireLoaded: Bool
    ) -> CommandAdmission {
        served.withLock { s in
            if requireLoaded && s.cache == nil { return .notLoaded }
            if reportUnitAttention, let ua = s.queues.next(for: nexus, consume: true) { return .unitAttention(ua) }
            let state = s.cache?.state ?? SharedLUNState()
            if let holder = state.spc2Holder, !holder.names(nexus), conflictClass != .allowed {
                return .reservationConflict
            }
            if state.persistent.conflicts(nexus, conflictClass) { return .reservationConflict }
            return .proceed
        }
    }

    public func change<R: Sendable>(
        sparing task: TaskKey?, _ decide: @Sendable (inout SharedLUNState) throws -> (R, [ContextEffect])
    ) async throws -> R {
        await changes.lock()
        defer { changes.unlock() }
        for _ in 0..<Self.maximumConflicts {
            guard await ready(), let current = cache else { throw SenseData(.asymmetricAccessStateTransition) }
            var next = current.state
            let (result, effects) = try decide(&next)
            if next == current.state && effects.isEmpty { return result }
            // Rule 2: a node without its lease acknowledges no change.
            guard mayChange() else { throw SenseData(.asymmetricAccessStateTransition) }
            let change = ContextChange(version: current.version + 1, state: next, effects: effects)
            let outcome: ContextCommit
            do {
                outcome = try await store.commit(change, expected: current.version, requestID: Self.requestID())
            } catch {
                // Unknown outcome that the request id could not settle (no store now): the
                // cache is re-read before the next change, and the command is retryable.
                served.withLock { $0.cache = nil }
                throw SenseData(.asymmetricAccessStateTransition)
            }
            switch outcome {
            case .committed:
                await advance(with: change, sparing: task, waitForAborts: true)
                await peers?.propagate(change)
                return result
            case .conflict:
                guard await catchUp(to: current.version + 1, sparing: task) else {
                    throw SenseData(.asymmetricAccessStateTransition)
                }
            }
        }
        throw SenseData(.asymmetricAccessStateTransition)
    }

    public func receive(_ change: ContextChange) async {
        // Not loaded yet: the pushed state is the newest there is.
        served.withLock { s in
            if s.cache == nil, change.version > 0 {
                s.cache = VersionedLUNState(version: change.version - 1, state: change.state)
            }
        }
        if let cache, change.version == cache.version + 1 {
            await advance(with: change, sparing: nil, waitForAborts: true)
            return
        }
        if let cache, change.version > cache.version + 1 { _ = await catchUp(to: change.version) }
        // Applied already (by a catch-up or before): the aborts still end before the
        // acknowledgement, since the sender waits for them.
        for effect in change.effects where effect.abortsTasks { await aborter?(effect, nil, true) }
    }

    public func catchUp(to version: UInt64) async -> Bool {
        await catchUp(to: version, sparing: nil)
    }

    /// Catches up; the missed changes' aborts spare `task` (a change being made
    /// here, which meets a conflict, catches up on its own behalf).
    private func catchUp(to version: UInt64, sparing task: TaskKey?) async -> Bool {
        guard let cached = cache else { return await ready() }
        if cached.version >= version { return true }
        guard let (current, recorded) = try? await store.changes(after: cached.version) else { return false }
        // Another catch-up or a push may have moved the cache while the store was read:
        // the entries newer than what is served now, and the newer state, are published together.
        let missed = served.withLock { s -> [ContextEffect] in
            let from = s.cache?.version ?? cached.version
            let missed = recorded.filter { $0.version > from }.flatMap(\.effects)
            for effect in missed { s.queues.apply(effect) }
            if current.version > (s.cache?.version ?? 0) { s.cache = current }
            return missed
        }
        for effect in missed where effect.abortsTasks { await aborter?(effect, task, false) }
        return true
    }

    /// Applies the next version: state and unit attentions together, then aborts
    /// (sparing `task`, the one that made the change here).
    private func advance(with change: ContextChange, sparing task: TaskKey?, waitForAborts: Bool) async {
        let applied = served.withLock { s -> Bool in
            guard let cached = s.cache, change.version == cached.version + 1 else { return false }
            s.cache = VersionedLUNState(version: change.version, state: change.state)
            for effect in change.effects { s.queues.apply(effect) }
            return true
        }
        guard applied else { return }
        for effect in change.effects where effect.abortsTasks { await aborter?(effect, task, waitForAborts) }
    }

    static func requestID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
    }
}

/// ``SharedContextStore`` in this process's memory: a single node's store,
/// or the shared store of an in-process cluster in tests. Compare-and-set on
/// the version like the replicated store. With a ``ReservationStateStore``,
/// persistent reservations are saved there before a commit counts (and
/// loaded from it at the first ``load()``, APTPL only unless the store says
/// its state outlives a restart).
public final class InMemoryContextStore: SharedContextStore {
    private struct State {
        var current = VersionedLUNState(version: 0, state: SharedLUNState())
        var recorded: [RecordedEffects] = []
        var applied: Set<String> = []
        var loaded = false
    }

    private let state = Mutex(State())
    private let reservationStore: (any ReservationStateStore)?
    private let key: String
    /// Effects kept for nodes that missed a push.
    static let keptVersions = 256

    public init(reservationStore: (any ReservationStateStore)? = nil, key: String = "") {
        self.reservationStore = reservationStore
        self.key = key
    }

    public func load() async throws -> VersionedLUNState {
        if let reservationStore, !state.withLock({ $0.loaded }) {
            var restored = SharedLUNState()
            if let saved = try await reservationStore.loadReservations(lun: key),
                saved.aptpl || reservationStore.restoresAcrossNodeRestart
            {
                restored.persistent = saved
            }
            if reservationStore.restoresAcrossNodeRestart,
                let pages = try await reservationStore.loadModePages(lun: key)
            {
                restored.modePages = pages
            }
            state.withLock { s in
                if !s.loaded {
                    s.current.state = restored
                    s.loaded = true
                }
            }
        }
        return state.withLock { $0.current }
    }

    public func commit(_ change: ContextChange, expected: UInt64, requestID: String) async throws -> ContextCommit {
        let before = state.withLock { s -> VersionedLUNState? in
            if s.applied.contains(requestID) { return nil }
            return s.current
        }
        guard let before else { return .committed(version: expected + 1) }
        guard before.version == expected else { return .conflict }
        if let reservationStore {
            if change.state.persistent != before.state.persistent {
                try await reservationStore.saveReservations(change.state.persistent, lun: key)
            }
            if change.state.spc2Holder != before.state.spc2Holder {
                try await reservationStore.saveSPC2Reservation(change.state.spc2Holder, lun: key)
            }
            if change.state.modePages != before.state.modePages {
                try await reservationStore.saveModePages(change.state.modePages, lun: key)
            }
        }
        return state.withLock { s in
            guard s.current.version == expected else { return .conflict }
            s.current = VersionedLUNState(version: expected + 1, state: change.state)
            s.recorded.append(RecordedEffects(version: expected + 1, effects: change.effects))
            if s.recorded.count > Self.keptVersions { s.recorded.removeFirst(s.recorded.count - Self.keptVersions) }
            s.applied.insert(requestID)
            return .committed(version: expected + 1)
        }
    }

    public func changes(after version: UInt64) async throws -> (current: VersionedLUNState, effects: [RecordedEffects]) {
        state.withLock { s in (s.current, s.recorded.filter { $0.version > version }) }
    }
}

/// The SPC-2 RESERVE/RELEASE rules as pure functions of the current holder and
/// the persistent reservation state, so a change can be decided (and saved)
/// before it is committed.
public enum SPC2Reservation {
    /// SPC-2 RESERVE from `nexus`: whether it is granted and the holder after it.
    public static func reserve(_ nexus: ITNexus, holder: NexusName?, persistent: PersistentReservations)
        -> (granted: Bool, holder: NexusName?)
    {
        // SPC-2 §7.21: held by another nexus → RESERVATION CONFLICT.
        if let holder, !holder.names(nexus) { return (false, holder) }
        // SPC-4 §5.13.3 with CRH = 1: while persistent registrations exist, RESERVE from the
        // persistent reservation holder completes with GOOD and changes nothing; from anyone else it conflicts.
        if !persistent.registrations.isEmpty || persistent.reservation != nil {
            return (persistent.isHolder(nexus), holder)
        }
        return (true, NexusName(nexus))
    }

    /// SPC-2 RELEASE from `nexus`: whether it is GOOD and the holder after it.
    public static func release(_ nexus: ITNexus, holder: NexusName?, persistent: PersistentReservations)
        -> (granted: Bool, holder: NexusName?)
    {
        // SPC-4 §5.13.3 (CRH = 1): RELEASE under persistent reservations is GOOD only for a holder.
        if !persistent.registrations.isEmpty || persistent.reservation != nil {
            return (persistent.isHolder(nexus), holder)
        }
        // SPC-2 §7.16: releasing a reservation another nexus holds is a no-op.
        return (true, holder?.names(nexus) == true ? nil : holder)
    }
}
