import AIOBlockStorage
import ISCSITargetServer
import Logging

/// A node's whole configuration, as read from TOML (`tesserad --config`) or
/// from ``NodeConfiguration/defaultTOML``. Build one with
/// ``NodeConfiguration/parse(_:source:)``: every value here has been checked.
public struct NodeConfiguration: Sendable, Hashable {
    /// `[node]`.
    public var node: NodeSettings
    /// `[[portal]]`: the addresses the iSCSI server listens on.
    public var portals: [PortalConfiguration]
    /// `[iscsi]`: the operational values the target offers at login.
    public var iscsi: ISCSISettings
    /// Top-level `discovery_chap`: CHAP for SendTargets discovery sessions.
    public var discoveryCHAP: CHAPConfiguration?
    /// `[[target]]`.
    public var targets: [TargetConfiguration]
    /// `[cluster]`: the node's store membership (defaults: a one-member cluster).
    public var cluster: ClusterSettings
    /// `[admin]`: the health/metrics HTTP endpoint, if any.
    public var admin: AdminSettings?
    /// Problems that do not stop the node (short CHAP secrets, targets without LUNs).
    public var warnings: [ConfigurationDiagnostic]
    /// `[limits]`: what a host can make the portal hold (login timeout, connection and command bounds, write buffer).
    public var limits = ISCSIServerLimits()

    public init(
        node: NodeSettings = NodeSettings(), portals: [PortalConfiguration] = [PortalConfiguration()],
        iscsi: ISCSISettings = ISCSISettings(), discoveryCHAP: CHAPConfiguration? = nil,
        targets: [TargetConfiguration] = [], cluster: ClusterSettings = ClusterSettings(),
        admin: AdminSettings? = nil, warnings: [ConfigurationDiagnostic] = []
    ) {
        self.cluster = cluster
        self.admin = admin
        self.node = node
        self.portals = portals
        self.iscsi = iscsi
        self.discoveryCHAP = discoveryCHAP
        self.targets = targets
        self.warnings = warnings
    }
}

/// `[node]`: where the node keeps its files and how much it logs.
public struct NodeSettings: Sendable, Hashable {
    /// `data_dir`: base directory for relative LUN paths (created at start).
    public var dataDirectory: String
    /// `log_level`: trace, debug, info, notice, warning, error or critical.
    public var logLevel: Logger.Level

    public init(dataDirectory: String = "./tessera-data", logLevel: Logger.Level = .info) {
        self.dataDirectory = dataDirectory
        self.logLevel = logLevel
    }
}

/// `[[portal]]`: one listening address of the iSCSI server.
public struct PortalConfiguration: Sendable, Hashable {
    /// Host part of `listen` (IPv4, IPv6 without brackets, or a name).
    public var host: String
    /// Port part of `listen` (3260 when omitted).
    public var port: UInt16
    /// `group`: the target portal group tag (RFC 7143 §4.4.1; TargetPortalGroupTag).
    public var groupTag: UInt16

    public init(host: String = "127.0.0.1", port: UInt16 = 3260, groupTag: UInt16 = 1) {
        self.host = host
        self.port = port
        self.groupTag = groupTag
    }

    /// `host:port`, with brackets around an IPv6 host (as in SendTargets' TargetAddress).
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `[iscsi]`: operational values the target offers during login negotiation.
public struct ISCSISettings: Sendable, Hashable {
    /// `queue_depth`: commands accepted per session (the CmdSN window, MaxCmdSN − ExpCmdSN + 1).
    public var queueDepth: Int
    /// `max_recv_data_segment_length`: MaxRecvDataSegmentLength the target declares (RFC 7143 §13.12).
    public var maxRecvDataSegmentLength: Int
    /// `max_burst_length`: MaxBurstLength offered (RFC 7143 §13.13).
    public var maxBurstLength: Int
    /// `first_burst_length`: FirstBurstLength offered (RFC 7143 §13.14).
    public var firstBurstLength: Int
    /// `immediate_data`: ImmediateData offered (RFC 7143 §13.11).
    public var immediateData: Bool
    /// `initial_r2t`: InitialR2T offered (RFC 7143 §13.10).
    public var initialR2T: Bool
    /// `nop_in_interval` (seconds): idle time before the target pings with a NOP-In; zero disables.
    public var nopInInterval: Duration
    /// `nop_in_timeout` (seconds): how long a NOP-In may go unanswered before the connection is dropped.
    public var nopInTimeout: Duration
    /// `idle_poll` (microseconds): how long a connection that has nothing
    /// running polls for the host's next command before its event loop may
    /// sleep; zero disables it (see the README, "Performance").
    public var idlePoll: Duration

    public init(
        queueDepth: Int = 128, maxRecvDataSegmentLength: Int = 262_144, maxBurstLength: Int = 1_048_576,
        firstBurstLength: Int = 65_536, immediateData: Bool = true, initialR2T: Bool = false,
        nopInInterval: Duration = .seconds(10), nopInTimeout: Duration = .seconds(30), idlePoll: Duration = .microseconds(50)
    ) {
        self.queueDepth = queueDepth
        self.maxRecvDataSegmentLength = maxRecvDataSegmentLength
        self.maxBurstLength = maxBurstLength
        self.firstBurstLength = firstBurstLength
        self.immediateData = immediateData
        self.initialR2T = initialR2T
        self.nopInInterval = nopInInterval
        self.nopInTimeout = nopInTimeout
        self.idlePoll = idlePoll
    }
}

/// CHAP credentials (RFC 7143 §12.1.3): the initiator proves `secret`; with
/// `mutual`, the target proves the mutual secret back.
public struct CHAPConfiguration: Sendable, Hashable {
    /// `user`: the CHAP_N the initiator must send.
    public var user: String
    /// `secret`: the initiator's secret.
    public var secret: String
    /// `mutual_user`: the name the target answers with in mutual CHAP (both mutual keys or neither).
    public var mutualUser: String?
    /// `mutual_secret`: the target's secret for mutual CHAP; never equal to `secret` (RFC 7143 §9.2.1).
    public var mutualSecret: String?

    /// Whether the target must authenticate itself too.
    public var isMutual: Bool { mutualUser != nil && mutualSecret != nil }

    public init(user: String, secret: String, mutualUser: String? = nil, mutualSecret: String? = nil) {
        self.user = user
        self.secret = secret
        self.mutualUser = mutualUser
        self.mutualSecret = mutualSecret
    }
}

/// `[[target]]`: one iSCSI target and its LUNs.
public struct TargetConfiguration: Sendable, Hashable {
    /// `name`: the iSCSI name (iqn., eui. or naa. form, RFC 3720 §3.2.6).
    public var name: String
    /// `alias`: TargetAlias (RFC 7143 §13.6).
    public var alias: String?
    /// `portal_groups`: the portal group tags the target is exported on (all when the key is absent).
    public var portalGroups: [UInt16]
    /// `acl`: initiator names allowed to log in; empty allows every initiator.
    public var allowedInitiators: [String]
    /// `chap`: CHAP required to log in to this target.
    public var chap: CHAPConfiguration?
    /// `[[target.lun]]`.
    public var luns: [LUNConfiguration]

    public init(
        name: String, alias: String? = nil, portalGroups: [UInt16] = [1], allowedInitiators: [String] = [],
        chap: CHAPConfiguration? = nil, luns: [LUNConfiguration] = []
    ) {
        self.name = name
        self.alias = alias
        self.portalGroups = portalGroups
        self.allowedInitiators = allowedInitiators
        self.chap = chap
        self.luns = luns
    }
}

/// `[[target.lun]]`: a logical unit and its backing store.
public struct LUNConfiguration: Sendable, Hashable {
    /// Where a LUN's blocks live.
    public enum Backing: Sendable, Hashable {
        /// `backing = "file"`, `path` relative to `data_dir` (or absolute).
        case file(path: String)
        /// `backing = "memory"`: lost at exit; for tests and demos.
        case memory
    }

    /// `id`: the LUN number (0...16383, SAM-5 flat space addressing).
    public var id: UInt16
    /// `size` in bytes (a multiple of `block_size`).
    public var size: UInt64
    /// `block_size`: 512 or 4096.
    public var blockSize: UInt32
    /// `physical_block_size`: what READ CAPACITY(16) reports as the physical
    /// block (a power-of-two multiple of `block_size`, at most 4096); nil = one
    /// logical block. Linux aligns I/O and file systems to it: set 4096 for a
    /// 512-byte LUN on a 4 KiB file system or disk.
    public var physicalBlockSize: UInt32?
    /// `backing` and `path`.
    public var backing: Backing
    /// `vendor`: INQUIRY T10 VENDOR IDENTIFICATION, at most 8 ASCII characters (SPC-4 §6.6.2).
    public var vendor: String
    /// `product`: INQUIRY PRODUCT IDENTIFICATION, at most 16 characters.
    public var product: String
    /// `revision`: INQUIRY PRODUCT REVISION LEVEL, at most 4 characters.
    public var revision: String
    /// `serial`: unit serial number (VPD page 0x80), at most 64 characters; nil lets the target derive one.
    public var serial: String?
    /// `direct_io`: "auto", true or false.
    public var directIO: AIOFileBlockDevice.DirectIO
    /// `read_only`: write-protected LUN.
    public var readOnly: Bool
    /// `thin`: sparse file with UNMAP; false allocates every block up front.
    public var thin: Bool
    /// `replicas`: copies of every sub-unit (1...3) on different nodes; nil
    /// takes the default: 2 in a cluster of several nodes, 1 on a lone node.
    public var replicas: Int?
    /// `sub_unit_size`: bytes per sub-unit (1 MiB…1 TiB, a multiple of the
    /// block size); the LUN's blocks are cut into pieces of this size that
    /// live on different nodes.
    public var subUnitSize: UInt64 = LUNConfiguration.defaultSubUnitSize
    /// The 64 bits of the NAA identifier (VPD 0x83) the store holds for the
    /// LUN; nil derives them from the target name and LUN number, as a
    /// TOML's LUN always is (ARCHITECTURE.md rule 4).
    public var identifier: UInt64?
    /// The largest size the store's LUN had before it was shrunk through
    /// the cluster (never set by a TOML): a replica file up to this long is
    /// cut to the LUN's size when the node opens it, since this node was
    /// away when the others cut theirs.
    public var shrunkFromBytes: UInt64?

    /// The default sub-unit size: 1 GiB.
    public static let defaultSubUnitSize: UInt64 = 1 << 30

    public init(
        id: UInt16, size: UInt64, blockSize: UInt32 = 512, backing: Backing, vendor: String = "TESSERA",
        product: String = "Virtual Disk", revision: String = "0001", serial: String? = nil,
        directIO: AIOFileBlockDevice.DirectIO = .auto, readOnly: Bool = false, thin: Bool = true
    ) {
        self.id = id
        self.size = size
        self.blockSize = blockSize
        self.backing = backing
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.serial = serial
        self.directIO = directIO
        self.readOnly = readOnly
        self.thin = thin
    }

    /// Number of logical blocks.
    public var blockCount: UInt64 { size / UInt64(blockSize) }
}
