import AIOBlockStorage
import BlockStorage
import ISCSISession
import ISCSITargetServer
import Logging
import MetadataStore
import SCSITarget

/// Builds the running pieces from a validated configuration: logical units
/// over opened devices, one SCSI target device per target, and the iSCSI
/// server's configuration. Pure mapping, no I/O: tested in TesseraNodeTests.
enum NodeRuntime {
    /// A LUN's identity must be the same on every node that will ever serve it
    /// (ARCHITECTURE.md, rule 4), so it is derived from the target name and LUN
    /// id, never from anything local such as a path or a random number.
    /// The SendTargets list of a cluster: every member's portals, in node order.
    static func clusterPortals(_ members: [MemberRecord]) -> [String] {
        members.sorted { $0.nodeID < $1.nodeID }.flatMap(\.portals)
    }

    static func identity(targetName: String, lunID: UInt16) -> UInt64 {
        // FNV-1a, 64 bit: stable across processes and platforms (unlike Hasher).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in targetName.lowercased().utf8 + [0, UInt8(lunID >> 8), UInt8(lunID & 0xFF)] {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The default unit serial number (VPD 0x80) when the configuration has none.
    static func defaultSerial(targetName: String, lunID: UInt16) -> String {
        let hex = String(identity(targetName: targetName, lunID: lunID), radix: 16, uppercase: true)
        return "TSR" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func logicalUnitConfiguration(targetName: String, lun: LUNConfiguration) -> LogicalUnitConfiguration {
        var configuration = LogicalUnitConfiguration(
            vendor: lun.vendor, product: lun.product, revision: lun.revision,
            serial: lun.serial ?? defaultSerial(targetName: targetName, lunID: lun.id),
            identifier: lun.identifier ?? identity(targetName: targetName, lunID: lun.id),
            writeProtected: lun.readOnly, thin: lun.thin)
        configuration.physicalBlockSize = lun.physicalBlockSize
        return configuration
    }

    /// One SCSI target device per configured target, holding its opened LUNs.
    /// `portGroups` defaults to this node's portal groups, all active/optimized (no store).
    static func targetDevices(
        configuration: NodeConfiguration, units: [OpenedLogicalUnit], reservationStore: (any ReservationStateStore)? = nil,
        portGroups: (any TargetPortGroupSource)? = nil, masks: LUNMasks? = nil,
        context: (String, UInt16) -> (any LogicalUnitContext)? = { _, _ in nil }
    ) -> [String: SCSITargetDevice] {
        let portGroups = portGroups ?? PortGroupStates(localGroups: configuration.portals.map(\.groupTag))
        var devices: [String: SCSITargetDevice] = [:]
        for target in configuration.targets {
            var luns: [UInt16: LogicalUnit] = [:]
            for unit in units where unit.targetName == target.name {
                luns[unit.lun.id] = LogicalUnit(
                    configuration: logicalUnitConfiguration(targetName: target.name, lun: unit.lun), device: unit.device,
                    context: context(target.name, unit.lun.id), reservationStore: reservationStore)
            }
            devices[target.name] = SCSITargetDevice(
                logicalUnits: luns, portGroups: portGroups, masks: masks.map { ($0, target.name) })
        }
        return devices
    }

    /// The portals a target is exported on (all when it names no groups).
    static func portals(of target: TargetConfiguration, in configuration: NodeConfiguration) -> [PortalConfiguration] {
        configuration.portals.filter { target.portalGroups.isEmpty || target.portalGroups.contains($0.groupTag) }
    }

    static func credentials(_ chap: CHAPConfiguration?) -> CHAPCredentials? {
        chap.map { CHAPCredentials(user: $0.user, secret: $0.secret, mutualUser: $0.mutualUser, mutualSecret: $0.mutualSecret) }
    }

    /// Login rules: targets with their ACLs, CHAP and SendTargets addresses,
    /// and the negotiation offers from `[iscsi]`.
    /// `clusterPortals`, when given, is what SendTargets lists for every
    /// target: every member node's portals, each with its own group tag.
    /// `accessRules`, when given, are the live ACL and CHAP every target's
    /// login reads (``AccessRulesFollower``), in place of the configuration's.
    static func loginConfiguration(
        _ configuration: NodeConfiguration, clusterPortals: [String]? = nil, accessRules: TargetAccessRules? = nil
    ) -> LoginConfiguration {
        let targets = configuration.targets.map { target in
            var description = TargetDescription(
                name: target.name, alias: target.alias,
                portalGroupTag: portals(of: target, in: configuration).first?.groupTag ?? 1,
                // RFC 7143 §13.3 / Appendix C: TargetAddress=domainname[:port][,portal-group-tag]
                sendTargetsAddresses: clusterPortals ?? portals(of: target, in: configuration).map { "\($0.address),\($0.groupTag)" },
                allowedInitiators: target.allowedInitiators, chap: credentials(target.chap))
            description.accessRules = accessRules
            return description
        }
        var login = LoginConfiguration(targets: targets, discoveryCHAP: credentials(configuration.discoveryCHAP))
        let iscsi = configuration.iscsi
        login.maxRecvDataSegmentLength = UInt32(iscsi.maxRecvDataSegmentLength)
        login.maxBurstLength = UInt32(iscsi.maxBurstLength)
        login.firstBurstLength = UInt32(iscsi.firstBurstLength)
        login.immediateData = iscsi.immediateData
        login.initialR2T = iscsi.initialR2T
        login.commandWindow = UInt32(iscsi.queueDepth)
        return login
    }

    static func serverConfiguration(
        _ configuration: NodeConfiguration, devices: [String: SCSITargetDevice], clusterPortals: [String]? = nil,
        accessRules: TargetAccessRules? = nil
    ) -> ISCSIServerConfiguration {
        let iscsi = configuration.iscsi
        return ISCSIServerConfiguration(
            portals: configuration.portals.map {
                .init(host: $0.host, port: Int($0.port), portalGroupTag: $0.groupTag)
            },
            login: loginConfiguration(configuration, clusterPortals: clusterPortals, accessRules: accessRules),
            targets: devices.mapValues { $0 as any SCSITaskExecutor },
            queueDepth: iscsi.queueDepth,
            nopInInterval: iscsi.nopInInterval == .zero ? nil : iscsi.nopInInterval,
            nopInTimeout: iscsi.nopInTimeout, idlePoll: iscsi.idlePoll, limits: configuration.limits)
    }
}
