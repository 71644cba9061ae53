import Foundation

/// The JSON resources of the admin API (`/v1/...`). The server encodes them
/// with ``AdminJSON/encoder`` and `tessera` decodes them with
/// ``AdminJSON/decoder``: one definition for both ends. Keys are snake_case.
/// No resource has a field for a CHAP secret or the admin token.
public enum AdminJSON {
    /// Sorted keys, snake_case, pretty-printed: stable output that reads in a terminal.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }

    /// The decoder matching ``encoder``.
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// `value` as JSON text with a final newline.
    public static func encode(_ value: some Encodable) -> String {
        guard let data = try? encoder.encode(value) else {
            // Only non-finite doubles fail to encode; none of the resources holds one unchecked.
            return #"{"error":"internal: the answer could not be encoded","hint":"report this"}"# + "\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// The body of every error answer: what went wrong and what to do next.
public struct AdminErrorBody: Codable, Hashable, Sendable {
    /// What went wrong.
    public var error: String
    /// What to do next.
    public var hint: String

    public init(error: String, hint: String) {
        self.error = error
        self.hint = hint
    }
}

/// `GET /v1/cluster`: the members, the store leader, every member's lease and
/// the port groups, all as the answering node sees them.
public struct ClusterStatus: Codable, Hashable, Sendable {
    /// The node that answered.
    public var answeredBy: UInt64
    /// The daemon version of the node that answered.
    public var version: String
    /// The store leader's node id, if one answered.
    public var storeLeader: UInt64?
    /// Every registered member, by node id.
    public var members: [Member]
    /// Every target port group (ALUA), by group id.
    public var portGroups: [PortGroup]

    public init(answeredBy: UInt64, version: String, storeLeader: UInt64?, members: [Member], portGroups: [PortGroup]) {
        self.answeredBy = answeredBy
        self.version = version
        self.storeLeader = storeLeader
        self.members = members
        self.portGroups = portGroups
    }

    /// One member of the cluster.
    public struct Member: Codable, Hashable, Sendable {
        /// Node id.
        public var id: UInt64
        /// Store (dqlite) address.
        public var storeAddress: String
        /// Peer (sub-unit I/O) address.
        public var peerAddress: String?
        /// iSCSI portals as SendTargets lists them ("host:port,tag").
        public var iscsiPortals: [String]
        /// Store role: "leader", "voter", "standby", "spare", or "unknown" when the store did not say.
        public var role: String
        /// The member's lease in the store.
        public var lease: Lease

        public init(
            id: UInt64, storeAddress: String, peerAddress: String?, iscsiPortals: [String], role: String, lease: Lease
        ) {
            self.id = id
            self.storeAddress = storeAddress
            self.peerAddress = peerAddress
            self.iscsiPortals = iscsiPortals
            self.role = role
            self.lease = lease
        }
    }

    /// A member's lease: its renewals as the store holds them and this node's verdict.
    public struct Lease: Codable, Hashable, Sendable {
        /// Renewals committed.
        public var beats: UInt64
        /// Fenced in the store (failed over; it serves nothing until it rejoins).
        public var fenced: Bool
        /// "alive", "suspected" or "dead", as the answering node judges it.
        public var liveness: String

        public init(beats: UInt64, fenced: Bool, liveness: String) {
            self.beats = beats
            self.fenced = fenced
            self.liveness = liveness
        }
    }

    /// One ALUA target port group (SPC-4 §6.37).
    public struct PortGroup: Codable, Hashable, Sendable {
        /// Target port group id (the portal group tag).
        public var id: UInt16
        /// The member whose portal carries the group, if known.
        public var node: UInt64?
        /// "active/optimized", "active/non-optimized", "standby", "unavailable", "transitioning", …
        public var state: String
        /// PREF bit.
        public var preferred: Bool

        public init(id: UInt16, node: UInt64?, state: String, preferred: Bool) {
            self.id = id
            self.node = node
            self.state = state
            self.preferred = preferred
        }
    }
}

/// `GET /v1/luns/{id}` (and each element of `GET /v1/luns`): a LUN's layout and sub-unit map.
public struct LUNStatus: Codable, Hashable, Sendable {
    /// The target the LUN belongs to.
    public var target: String
    /// The LUN number within the target.
    public var lun: UInt64
    /// Capacity in bytes.
    public var sizeBytes: UInt64
    /// Logical block length.
    public var blockSize: UInt32
    /// Unit serial number (VPD 0x80).
    public var serial: String
    /// The layout; nil for a LUN that is not distributed (no sub-unit map).
    public var layout: Layout?
    /// The sub-units, by index (empty without a layout).
    public var subUnits: [SubUnit]
    /// Every live member and the size it serves the LUN at, as it last
    /// published it (a member that does not serve it yet has no size); nil
    /// where the answer does not carry it (a change's answer).
    public var served: [Served]?

    public init(
        target: String, lun: UInt64, sizeBytes: UInt64, blockSize: UInt32, serial: String, layout: Layout?,
        subUnits: [SubUnit], served: [Served]? = nil
    ) {
        self.target = target
        self.lun = lun
        self.sizeBytes = sizeBytes
        self.blockSize = blockSize
        self.serial = serial
        self.layout = layout
        self.subUnits = subUnits
        self.served = served
    }

    /// One live member's view of the LUN.
    public struct Served: Codable, Hashable, Sendable {
        public var node: UInt64
        /// The capacity the node serves; nil while it does not serve the LUN.
        public var sizeBytes: UInt64?

        public init(node: UInt64, sizeBytes: UInt64?) {
            self.node = node
            self.sizeBytes = sizeBytes
        }
    }

    /// The live members that serve the LUN at its size, and how many live members there are.
    public var servedAtSize: (serving: Int, members: Int)? {
        served.map { served in (served.filter { $0.sizeBytes == sizeBytes }.count, served.count) }
    }

    /// How the LUN is cut and replicated.
    public struct Layout: Codable, Hashable, Sendable {
        /// The cluster-wide LUN id (its NAA identifier's 64 bits), as carried in peer requests.
        public var lunID: String
        /// Bytes per sub-unit.
        public var subUnitBytes: UInt64
        /// Replicas wanted per sub-unit.
        public var replicas: Int
        /// Number of sub-units.
        public var subUnitCount: Int

        /// `lun_id` both ways (the snake_case strategies would read it back as `lunId`).
        enum CodingKeys: String, CodingKey {
            case lunID = "lunId"
            case subUnitBytes, replicas, subUnitCount
        }

        public init(lunID: String, subUnitBytes: UInt64, replicas: Int, subUnitCount: Int) {
            self.lunID = lunID
            self.subUnitBytes = subUnitBytes
            self.replicas = replicas
            self.subUnitCount = subUnitCount
        }
    }

    /// One sub-unit's replica set.
    public struct SubUnit: Codable, Hashable, Sendable {
        /// Index in the LUN's block space.
        public var index: UInt32
        /// The replica set's epoch.
        public var epoch: UInt64
        /// The primary's node id.
        public var primary: UInt64
        /// The secondaries' node ids.
        public var secondaries: [UInt64]
        /// Every replica, primary first.
        public var replicas: [Replica]

        public init(index: UInt32, epoch: UInt64, primary: UInt64, secondaries: [UInt64], replicas: [Replica]) {
            self.index = index
            self.epoch = epoch
            self.primary = primary
            self.secondaries = secondaries
            self.replicas = replicas
        }
    }

    /// One replica.
    public struct Replica: Codable, Hashable, Sendable {
        /// Node holding it.
        public var node: UInt64
        /// "in_sync", "stale" or "resyncing".
        public var state: String
        /// The resync's progress when the answering node runs it (it is the primary); else nil.
        public var resync: ResyncProgress?

        public init(node: UInt64, state: String, resync: ResyncProgress? = nil) {
            self.node = node
            self.state = state
            self.resync = resync
        }
    }

    /// A running resync's progress.
    public struct ResyncProgress: Codable, Hashable, Sendable {
        /// Done, in percent (one decimal).
        public var percent: Double
        /// Bytes copied.
        public var bytesDone: UInt64
        /// Bytes to copy.
        public var bytesTotal: UInt64
        /// Copy rate since the start.
        public var bytesPerSecond: UInt64

        public init(percent: Double, bytesDone: UInt64, bytesTotal: UInt64, bytesPerSecond: UInt64) {
            self.percent = percent.isFinite ? (percent * 10).rounded() / 10 : 0
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
            self.bytesPerSecond = bytesPerSecond
        }
    }
}

/// `GET /v1/luns/{id}/reservations`: the LUN's persistent reservation state
/// (SPC-4 §5.12) and its SPC-2 reservation.
public struct ReservationStatus: Codable, Hashable, Sendable {
    /// The target.
    public var target: String
    /// The LUN number.
    public var lun: UInt64
    /// PRgeneration.
    public var generation: UInt32
    /// Whether any registration was made with APTPL set.
    public var aptpl: Bool
    /// The registered keys, in registration order.
    public var registrations: [Registration]
    /// The persistent reservation, if one is held.
    public var reservation: Reservation?
    /// The SPC-2 RESERVE holder, if any.
    public var spc2Reservation: Nexus?

    public init(
        target: String, lun: UInt64, generation: UInt32, aptpl: Bool, registrations: [Registration],
        reservation: Reservation?, spc2Reservation: Nexus?
    ) {
        self.target = target
        self.lun = lun
        self.generation = generation
        self.aptpl = aptpl
        self.registrations = registrations
        self.reservation = reservation
        self.spc2Reservation = spc2Reservation
    }

    /// An I_T nexus: initiator port and target port names.
    public struct Nexus: Codable, Hashable, Sendable {
        /// Initiator port name.
        public var initiatorPort: String
        /// Target port name.
        public var targetPort: String

        public init(initiatorPort: String, targetPort: String) {
            self.initiatorPort = initiatorPort
            self.targetPort = targetPort
        }
    }

    /// One registration.
    public struct Registration: Codable, Hashable, Sendable {
        /// The reservation key, as 16 hex digits with 0x.
        public var key: String
        /// The I_T nexus it was registered through.
        public var nexus: Nexus
        /// APTPL was set.
        public var aptpl: Bool

        public init(key: String, nexus: Nexus, aptpl: Bool) {
            self.key = key
            self.nexus = nexus
            self.aptpl = aptpl
        }
    }

    /// The persistent reservation.
    public struct Reservation: Codable, Hashable, Sendable {
        /// The holder's key (0x…).
        public var key: String
        /// The holder; nil for the all-registrants types.
        public var holder: Nexus?
        /// Type name ("write_exclusive", "exclusive_access", "…_registrants_only", "…_all_registrants").
        public var type: String
        /// The type code (SPC-4 table 172).
        public var typeCode: UInt8
        /// Scope (0 = LU_SCOPE).
        public var scope: UInt8

        public init(key: String, holder: Nexus?, type: String, typeCode: UInt8, scope: UInt8) {
            self.key = key
            self.holder = holder
            self.type = type
            self.typeCode = typeCode
            self.scope = scope
        }

        /// The name of a PR type code (SPC-4 §6.16.2, table 172).
        public static func typeName(_ code: UInt8) -> String {
            switch code {
            case 1: "write_exclusive"
            case 3: "exclusive_access"
            case 5: "write_exclusive_registrants_only"
            case 6: "exclusive_access_registrants_only"
            case 7: "write_exclusive_all_registrants"
            case 8: "exclusive_access_all_registrants"
            default: "type_\(code)"
            }
        }
    }

    /// A reservation key as `tessera` and sg_persist print it.
    public static func keyText(_ key: UInt64) -> String {
        let hex = String(key, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }
}

/// `GET /v1/targets`: one target, its LUNs and who may log in. CHAP appears
/// only as the user name and whether it is mutual: never a secret.
public struct TargetStatus: Codable, Hashable, Sendable {
    /// The iSCSI name.
    public var name: String
    /// TargetAlias.
    public var alias: String?
    /// The LUN numbers.
    public var luns: [UInt64]
    /// Initiator names allowed to log in; empty allows every initiator.
    public var acl: [String]
    /// CHAP required to log in, if any.
    public var chap: CHAP?
    /// CHAP of single initiators, by initiator name; each takes the place of
    /// ``chap`` for its initiator. Absent in answers of nodes that predate it.
    public var initiatorChap: [InitiatorCHAP]?
    /// The LUNs with a mask and who sees them, by LUN; a LUN not listed is
    /// seen by every initiator the ACL admits. Absent in answers of nodes
    /// that predate it.
    public var lunMasks: [LUNMask]?
    /// The portal group tag it is exported on where a node has portals of
    /// that tag. Absent in answers of nodes that predate it.
    public var portalGroupTag: UInt16?

    public init(
        name: String, alias: String?, luns: [UInt64], acl: [String], chap: CHAP?, initiatorChap: [InitiatorCHAP]? = nil,
        lunMasks: [LUNMask]? = nil, portalGroupTag: UInt16? = nil
    ) {
        self.portalGroupTag = portalGroupTag
        self.name = name
        self.alias = alias
        self.luns = luns
        self.acl = acl
        self.chap = chap
        self.initiatorChap = initiatorChap
        self.lunMasks = lunMasks
    }

    /// One LUN's mask: the only initiators that see it.
    public struct LUNMask: Codable, Hashable, Sendable {
        /// The LUN number.
        public var lun: UInt64
        /// The initiators that see it (lower case, sorted).
        public var initiators: [String]

        public init(lun: UInt64, initiators: [String]) {
            self.lun = lun
            self.initiators = initiators
        }
    }

    /// One initiator's CHAP as the API shows it: never the secret.
    public struct InitiatorCHAP: Codable, Hashable, Sendable {
        /// The initiator's iSCSI name.
        public var initiator: String
        /// CHAP_N it must send.
        public var user: String
        /// Whether the target authenticates itself too.
        public var mutual: Bool

        public init(initiator: String, user: String, mutual: Bool) {
            self.initiator = initiator
            self.user = user
            self.mutual = mutual
        }
    }

    /// CHAP as the API shows it.
    public struct CHAP: Codable, Hashable, Sendable {
        /// CHAP_N the initiator must send.
        public var user: String
        /// Whether the target authenticates itself too.
        public var mutual: Bool

        public init(user: String, mutual: Bool) {
            self.user = user
            self.mutual = mutual
        }
    }
}
