import SCSITarget
import SCSIWire
import Synchronization

/// A logical unit context over another whose ``establishUnitAttention(_:scope:)``
/// parks, once armed with ``holdNextUnitAttention()``, until ``release()``:
/// a test can then look at what commands see while a unit attention is
/// still on its way. Everything else goes straight to the wrapped context.
public final class HeldUnitAttentionContext: LogicalUnitContext {
    public let wrapped: any LogicalUnitContext
    private let armed = Mutex(false)
    private let lot = ParkingLot()

    public init(_ wrapped: any LogicalUnitContext) { self.wrapped = wrapped }

    /// The next unit attention parks before it is queued.
    public func holdNextUnitAttention() { armed.withLock { $0 = true } }

    /// Unit attentions parked now.
    public var held: Int { lot.count }

    /// Lets every parked unit attention be queued.
    public func release() { lot.release() }

    public func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) async {
        let hold = armed.withLock { armed in
            defer { armed = false }
            return armed
        }
        if hold { await lot.park() }
        await wrapped.establishUnitAttention(reason, scope: scope)
    }

    public func ready() async -> Bool { await wrapped.ready() }
    public func nexusEstablished(_ nexus: ITNexus) async { await wrapped.nexusEstablished(nexus) }
    public func nexusLost(_ nexus: ITNexus) async { await wrapped.nexusLost(nexus) }
    public func unitAttention(for nexus: ITNexus, consume: Bool) -> SenseReason? {
        wrapped.unitAttention(for: nexus, consume: consume)
    }
    public func admit(
        _ nexus: ITNexus, conflictClass: ReservationConflictClass, reportUnitAttention: Bool, requireLoaded: Bool
    ) -> CommandAdmission {
        wrapped.admit(
            nexus, conflictClass: conflictClass, reportUnitAttention: reportUnitAttention, requireLoaded: requireLoaded)
    }
    public func shared() -> SharedLUNState { wrapped.shared() }
    public func modePages() -> ModePageValues { wrapped.modePages() }
    public func change<R: Sendable>(
        sparing task: TaskKey?, _ decide: @Sendable (inout SharedLUNState) throws -> (R, [ContextEffect])
    ) async throws -> R {
        try await wrapped.change(sparing: task, decide)
    }
    public func setTaskAborter(_ aborter: @escaping TaskAborter) { wrapped.setTaskAborter(aborter) }
    public func receive(_ change: ContextChange) async { await wrapped.receive(change) }
    public func catchUp(to version: UInt64) async -> Bool { await wrapped.catchUp(to: version) }
    public func version() -> UInt64 { wrapped.version() }
}
