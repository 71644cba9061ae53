import SCSIWire

/// Which I_T nexuses a new unit attention condition is established for (SAM-5 §5.14).
public enum UnitAttentionScope: Sendable, Hashable {
    /// Every nexus the logical unit knows.
    case allNexuses
    /// Every known nexus except this one (the one that caused the change).
    case allExcept(ITNexus)
    /// Only this nexus.
    case only(ITNexus)
}

/// The SCSI state of a logical unit that must look the same from every path:
/// unit attention queues per I_T nexus and mode page values (later PR and
/// SPC-2 reservations and ALUA state). The in-memory implementation serves a
/// single node; a replicated store implements the same protocol later, which
/// is why every method is `async`.
public protocol LogicalUnitContext: AnyObject, Sendable {
    /// A nexus logged in. A nexus seen for the first time since start gets
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (SAM-5 §5.14).
    func nexusEstablished(_ nexus: ITNexus) async
    /// A nexus went away; it gets I_T NEXUS LOSS OCCURRED when it comes back.
    func nexusLost(_ nexus: ITNexus) async
    /// The oldest pending unit attention for `nexus`, removed when `consume`.
    /// Registers a nexus seen for the first time (as ``nexusEstablished(_:)``).
    func unitAttention(for nexus: ITNexus, consume: Bool) async -> SenseReason?
    /// Queues `reason` for the nexuses in `scope`.
    func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) async
    /// Current mode page values.
    func modePages() async -> ModePageValues
    /// Stores new mode page values (MODE SELECT).
    func setModePages(_ values: ModePageValues) async
    /// Logical unit reset (SAM-5 §6.3.3): clears state that a reset clears
    /// (SPC-2 reservations, later). Unit attentions are set by the caller.
    func logicalUnitReset() async
}

/// ``LogicalUnitContext`` held in this process's memory.
public actor InMemoryLogicalUnitContext: LogicalUnitContext {
    /// Pending unit attentions per known nexus, oldest first.
    private var queues: [ITNexus: [SenseReason]] = [:]
    private var pages: ModePageValues = .defaults
    /// SAM-5 does not bound the queue; a bound keeps a silent nexus from growing it forever.
    static let maximumQueued = 16

    public init() {}

    public func nexusEstablished(_ nexus: ITNexus) {
        if queues[nexus] == nil { queues[nexus] = [.powerOnResetOrBusDeviceResetOccurred] }
    }

    public func nexusLost(_ nexus: ITNexus) {
        guard queues[nexus] != nil else { return }
        queues[nexus] = [.itNexusLossOccurred]
    }

    public func unitAttention(for nexus: ITNexus, consume: Bool) -> SenseReason? {
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

    public func establishUnitAttention(_ reason: SenseReason, scope: UnitAttentionScope) {
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

    private func add(_ reason: SenseReason, to nexus: ITNexus) {
        var queue = queues[nexus] ?? []
        // A reset supersedes everything queued before it (SAM-5 §5.14: highest precedence).
        if reason.code.asc == 0x29 { queue.removeAll() }
        if !queue.contains(reason) && queue.count < Self.maximumQueued { queue.append(reason) }
        queues[nexus] = queue
    }

    public func modePages() -> ModePageValues { pages }

    public func setModePages(_ values: ModePageValues) { pages = values }

    public func logicalUnitReset() {}
}
