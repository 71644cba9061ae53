import ClusterModel

/// A cluster member's addresses as tesserad registers them.
public struct MemberRecord: Hashable, Sendable {
    /// Node id (= dqlite id).
    public var nodeID: NodeID
    /// dqlite address.
    public var storeAddress: String
    /// Node-to-node port address.
    public var peerAddress: String?
    /// iSCSI portal "host:port".
    public var iscsiPortal: String?
    /// Failure domain tag.
    public var failureDomain: UInt64
    /// Every iSCSI portal of the node as a SendTargets TargetAddress value
    /// "host:port,tag" (RFC 7143 §13.8), in the order SendTargets lists them.
    /// Stored space-separated, so a value must be non-empty and hold no
    /// whitespace (`upsertMember` traps on one that does).
    public var portals: [String]

    public init(
        nodeID: NodeID, storeAddress: String, peerAddress: String? = nil, iscsiPortal: String? = nil, failureDomain: UInt64 = 0,
        portals: [String] = []
    ) {
        self.nodeID = nodeID
        self.storeAddress = storeAddress
        self.peerAddress = peerAddress
        self.iscsiPortal = iscsiPortal
        self.failureDomain = failureDomain
        self.portals = portals
    }
}

/// An iSCSI target.
public struct TargetRecord: Hashable, Sendable {
    /// Target name (iqn.…).
    public var iqn: String
    /// TargetAlias, if any.
    public var alias: String?
    /// Target portal group tag.
    public var portalGroupTag: UInt16

    public init(iqn: String, alias: String? = nil, portalGroupTag: UInt16 = 1) {
        self.iqn = iqn
        self.alias = alias
        self.portalGroupTag = portalGroupTag
    }
}

/// Identifies a logical unit cluster-wide.
public struct LUNKey: Hashable, Sendable, CustomStringConvertible {
    /// Owning target.
    public var targetIQN: String
    /// LUN number.
    public var lun: UInt64

    public init(targetIQN: String, lun: UInt64) {
        self.targetIQN = targetIQN
        self.lun = lun
    }

    public var description: String { "\(targetIQN)/\(lun)" }
    var parameters: [DqliteValue] { [.text(targetIQN), .int(lun)] }
}

/// A logical unit's identity and geometry; identical answers on every node
/// (VPD 0x80/0x83, READ CAPACITY) come from here.
public struct LUNRecord: Hashable, Sendable {
    /// Which LU.
    public var key: LUNKey
    /// Capacity in bytes.
    public var sizeBytes: UInt64
    /// Logical block length.
    public var blockSize: UInt32
    /// NAA designator (8 or 16 bytes) for VPD 0x83.
    public var naaID: [UInt8]
    /// Unit serial number for VPD 0x80.
    public var serial: String
    /// Backing description (path or extent spec).
    public var backing: String
    /// Bumped on every change to the LU's shared SCSI context.
    public var contextVersion: UInt64

    public init(key: LUNKey, sizeBytes: UInt64, blockSize: UInt32, naaID: [UInt8], serial: String, backing: String = "", contextVersion: UInt64 = 0) {
        self.key = key
        self.sizeBytes = sizeBytes
        self.blockSize = blockSize
        self.naaID = naaID
        self.serial = serial
        self.backing = backing
        self.contextVersion = contextVersion
    }
}

/// How a distributed LUN is cut into sub-units and replicated (the
/// `lun_layouts` row); the sub-units' replica sets are in `SubUnitMap`.
public struct LUNLayoutRecord: Hashable, Sendable {
    /// The LUN's cluster-wide id, carried in peer requests.
    public var lunID: LUNID
    /// Replicas wanted per sub-unit.
    public var replicationFactor: Int
    /// Bytes per sub-unit (the last one may be shorter); a multiple of the block size.
    public var subUnitBytes: UInt64

    public init(lunID: LUNID, replicationFactor: Int, subUnitBytes: UInt64) {
        self.lunID = lunID
        self.replicationFactor = replicationFactor
        self.subUnitBytes = subUnitBytes
    }
}

/// CHAP credentials: `initiator` direction authenticates the initiator,
/// `target` direction is the mutual secret.
public struct CHAPRecord: Hashable, Sendable {
    /// Which way the secret authenticates.
    public enum Direction: String, Sendable, CaseIterable {
        /// The target checks the initiator.
        case initiator
        /// The initiator checks the target (mutual CHAP).
        case target
    }
    /// Target the credentials belong to.
    public var targetIQN: String
    /// Initiator they apply to; "" for every initiator.
    public var initiatorIQN: String
    /// Direction.
    public var direction: Direction
    /// CHAP_N.
    public var username: String
    /// The shared secret.
    public var secret: String

    public init(targetIQN: String, initiatorIQN: String = "", direction: Direction, username: String, secret: String) {
        self.targetIQN = targetIQN
        self.initiatorIQN = initiatorIQN
        self.direction = direction
        self.username = username
        self.secret = secret
    }
}

/// A PR registration: one I_T nexus and its key (SPC-4 §5.12).
public struct PRRegistrationRecord: Hashable, Sendable {
    /// The I_T nexus's initiator port name.
    public var initiatorPort: String
    /// The I_T nexus's target port name.
    public var targetPort: String
    /// Registered reservation key.
    public var reservationKey: UInt64
    /// Activate Persist Through Power Loss was set.
    public var aptpl: Bool

    public init(initiatorPort: String, targetPort: String, reservationKey: UInt64, aptpl: Bool = false) {
        self.initiatorPort = initiatorPort
        self.targetPort = targetPort
        self.reservationKey = reservationKey
        self.aptpl = aptpl
    }
}

/// The persistent reservation on an LU, if any.
public struct PRReservationRecord: Hashable, Sendable {
    /// Holder's initiator port; nil for all-registrants types.
    public var holderInitiatorPort: String?
    /// Holder's target port; nil for all-registrants types.
    public var holderTargetPort: String?
    /// The holder's key.
    public var reservationKey: UInt64
    /// PR type code (SPC-4 Table 172).
    public var type: UInt8
    /// Scope (0 = LU_SCOPE).
    public var scope: UInt8

    public init(holderInitiatorPort: String?, holderTargetPort: String?, reservationKey: UInt64, type: UInt8, scope: UInt8 = 0) {
        self.holderInitiatorPort = holderInitiatorPort
        self.holderTargetPort = holderTargetPort
        self.reservationKey = reservationKey
        self.type = type
        self.scope = scope
    }
}

/// All PR state of one LU, read in one go.
public struct PRState: Hashable, Sendable {
    /// PRgeneration (SPC-4 §6.15.2).
    public var generation: UInt32
    /// Registrations.
    public var registrations: [PRRegistrationRecord]
    /// The reservation, if one is held.
    public var reservation: PRReservationRecord?

    public init(generation: UInt32 = 0, registrations: [PRRegistrationRecord] = [], reservation: PRReservationRecord? = nil) {
        self.generation = generation
        self.registrations = registrations
        self.reservation = reservation
    }
}

/// An SPC-2 RESERVE(6/10) holder.
public struct SPC2ReservationRecord: Hashable, Sendable {
    /// Holder's initiator port.
    public var holderInitiatorPort: String
    /// Holder's target port.
    public var holderTargetPort: String

    public init(holderInitiatorPort: String, holderTargetPort: String) {
        self.holderInitiatorPort = holderInitiatorPort
        self.holderTargetPort = holderTargetPort
    }
}

/// Saved/current values of a mode page set by MODE SELECT.
public struct ModePageRecord: Hashable, Sendable {
    /// PAGE CODE.
    public var pageCode: UInt8
    /// SUBPAGE CODE.
    public var subpageCode: UInt8
    /// Page bytes as MODE SENSE returns them.
    public var data: [UInt8]

    public init(pageCode: UInt8, subpageCode: UInt8 = 0, data: [UInt8]) {
        self.pageCode = pageCode
        self.subpageCode = subpageCode
        self.data = data
    }
}

/// ALUA state of one target port group (SPC-4 §6.37: 0 active/optimized,
/// 1 active/non-optimized, 2 standby, 3 unavailable, 15 transitioning).
public struct ALUAStateRecord: Hashable, Sendable {
    /// Target port group id (one per node).
    public var targetPortGroup: UInt16
    /// The node that owns the group.
    public var nodeID: NodeID
    /// Asymmetric access state code.
    public var state: UInt8
    /// PREF bit.
    public var preferred: Bool

    public init(targetPortGroup: UInt16, nodeID: NodeID, state: UInt8, preferred: Bool = false) {
        self.targetPortGroup = targetPortGroup
        self.nodeID = nodeID
        self.state = state
        self.preferred = preferred
    }
}
