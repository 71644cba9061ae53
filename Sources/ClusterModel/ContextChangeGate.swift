/// Asked by the SCSI layer before it acknowledges a change to shared SCSI
/// context (PERSISTENT RESERVE OUT, RESERVE/RELEASE, MODE SELECT, ALUA): a
/// node that has lost its store lease must not acknowledge one
/// (ARCHITECTURE.md "Shared context" rule 2: the lease gates changes).
public protocol ContextChangeGate: Sendable {
    /// True while the node holds its lease on the store's quorum.
    func mayChangeContext() -> Bool
}

/// A gate that always allows changes: single-node tests without a store.
public struct AlwaysOpenContextGate: ContextChangeGate {
    public init() {}
    public func mayChangeContext() -> Bool { true }
}
