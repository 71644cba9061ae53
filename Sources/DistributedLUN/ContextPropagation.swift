import ClusterModel
import Foundation
import SCSITarget

/// ``SharedContextPeers`` over the peer port: pushes a committed change of
/// one LUN's shared SCSI context to every other member and waits, per member,
/// for its acknowledgement or until its lease must have lapsed
/// (ARCHITECTURE.md "Shared context" rule 1).
///
/// Why the wait is bounded by the lease: a member renews its lease only by a
/// store write followed by a read of the LUNs' context versions, and it
/// counts a renewal (from the time it was sent) only once it has caught up
/// with them. A renewal sent
/// before this change was committed keeps that member's lease for at most
/// `lease` after it was sent; one sent after it sees the new version. So once
/// `lease` (plus a margin for clock rates) has passed since the commit, a
/// member that never answered serves the new state or serves nothing.
public final class PeerContextPropagation: SharedContextPeers {
    private let lun: LUNID
    private let transport: any PeerTransport
    private let members: @Sendable () -> [NodeID]
    private let lease: Duration
    private let missed: @Sendable ([NodeID]) -> Void
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async -> Void

    /// `members`: every other member (not this node). `missed`: told which
    /// members did not acknowledge a change in time (logged by the caller).
    /// `now` and `sleep` are the clock (tests pass a manual one).
    public init(
        lun: LUNID, transport: any PeerTransport, members: @escaping @Sendable () -> [NodeID], lease: Duration,
        missed: @escaping @Sendable ([NodeID]) -> Void = { _ in },
        now: @escaping @Sendable () -> Duration = { ContinuousClock.now - PeerContextPropagation.epoch },
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }
    ) {
        self.lun = lun
        self.transport = transport
        self.members = members
        self.lease = lease
        self.missed = missed
        self.now = now
        self.sleep = sleep
    }

    /// The origin of the default clock's readings.
    public static let epoch = ContinuousClock.now

    /// The longest a push waits for one member.
    var bound: Duration { lease + lease / 10 + .milliseconds(100) }

    public func propagate(_ change: ContextChange) async {
        let others = members()
        guard !others.isEmpty, let payload = try? ContextChangeCoding.encode(change) else { return }
        let request = PeerRequest.contextChange(lun, payload: payload)
        let deadline = now() + bound
        let (transport, now, sleep) = (self.transport, self.now, self.sleep)
        let unacknowledged = await withTaskGroup(of: NodeID?.self) { group in
            for node in others {
                group.addTask {
                    while now() < deadline {
                        let left = deadline - now()
                        switch await transport.send(request, to: node, timeout: min(left, .milliseconds(500))) {
                        case .done:
                            return nil
                        case .failure(let failure) where failure.code == .unknownSubUnit:
                            // The member does not serve this LUN (yet): it reads the
                            // context from the store before its first command.
                            return nil
                        default:
                            await sleep(.milliseconds(20))
                        }
                    }
                    return node
                }
            }
            var late: [NodeID] = []
            for await case let node? in group { late.append(node) }
            return late
        }
        if !unacknowledged.isEmpty { missed(unacknowledged) }
    }
}

/// The payload of a ``PeerRequest/contextChange(_:payload:)``: the change as JSON.
public enum ContextChangeCoding {
    public static func encode(_ change: ContextChange) throws -> [UInt8] {
        [UInt8](try JSONEncoder().encode(change))
    }

    public static func decode(_ payload: [UInt8]) -> ContextChange? {
        try? JSONDecoder().decode(ContextChange.self, from: Data(payload))
    }
}
