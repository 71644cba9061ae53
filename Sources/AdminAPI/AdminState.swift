/// What the admin API reads from the node: the node implements it over its
/// store and runtime (TesseraNode's `AdminState+Node.swift`), tests with a
/// fake. Every method reads the current state; a store that cannot answer
/// throws ``AdminStateError``, which the router turns into a 503.
public protocol AdminState: Sendable {
    /// The node's health report (`/health`, `/metrics`).
    func health() -> HealthReport
    /// The members, the store leader, the leases and the port groups.
    func cluster() async throws -> ClusterStatus
    /// Every LUN of every target, by target and LUN number.
    func luns() async throws -> [LUNStatus]
    /// The reservations of one LUN; nil when there is no such LUN.
    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus?
    /// Every target, by name.
    func targets() async throws -> [TargetStatus]
    /// Applies one access change in one store transaction and returns the
    /// target as it is afterwards; nil when there is no such target. With a
    /// `requestID` that was applied before, nothing changes and the current
    /// state is returned (a retry is harmless). Throws an ``AdminFailure``
    /// for a change the state refuses (409, 404), ``AdminStateError`` when
    /// the store cannot answer.
    func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus?
    /// Clears one LUN's persistent reservations as an administrator (every
    /// registration and the reservation; each registrant gets RESERVATIONS
    /// PREEMPTED) and returns them as they are afterwards; nil when there
    /// is no such LUN. A `requestID` applied before changes nothing.
    func clearReservations(target: String, lun: UInt64, requestID: String?) async throws -> ReservationStatus?
    /// Applies one catalog change (a target or LUN created, changed, resized or
    /// deleted) in one store transaction and returns what it made; every
    /// node serves the result within about a second. A `requestID` applied
    /// before changes nothing (the current state is returned). Throws an
    /// ``AdminFailure`` for a change the state refuses (404, 409).
    func apply(_ change: CatalogChange, requestID: String?) async throws -> CatalogOutcome
    /// Every live iSCSI session of the cluster, by node and TSIH.
    func sessions() async throws -> [SessionStatus]
    /// Closes one session: at once when this node holds it, else by asking
    /// its node through the store; nil when no such session is listed.
    /// Repeating it is harmless.
    func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose?
    /// The node's I/O figures for `/metrics`, read now.
    func ioStatistics() -> NodeIOStatistics
    /// Every member with what it holds and its drain, by node id.
    func nodes() async throws -> [NodeStatus]
    /// Applies one member change (drain, undrain, add, remove) in one store
    /// transaction and says what it planned. Throws an ``AdminFailure`` for
    /// a change the cluster refuses (404 unknown node, 409 with the reason).
    func apply(_ change: NodeChange, requestID: String?) async throws -> NodeChangeOutcome
}

extension AdminState {
    /// No I/O figures (a state that keeps none).
    public func ioStatistics() -> NodeIOStatistics { NodeIOStatistics() }
}

/// The node could not read what was asked (no store quorum, a store error).
public struct AdminStateError: Error, Sendable, CustomStringConvertible {
    /// What failed, for the operator (no secrets).
    public var description: String

    public init(_ description: String) { self.description = description }
}
