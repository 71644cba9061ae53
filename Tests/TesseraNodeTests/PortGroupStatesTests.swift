import BlockStorage
import ClusterModel
import MetadataStore
import SCSITarget
import SCSIWire
import TesseraTestKit
import Testing

@testable import TesseraNode

/// The node's target port groups (ARCHITECTURE.md "ALUA and the host's view"):
/// one per portal group, this node's following its lease, the others' the
/// members and `alua_states`; every change reaches the devices as 06/2A/06.
@Suite struct PortGroupStatesTests {
    static func member(_ id: UInt64, _ portals: [String]) -> MemberRecord {
        MemberRecord(nodeID: NodeID(id), storeAddress: "127.0.0.1:\(9000 + id)", portals: portals)
    }
    static let members = [
        member(1, ["127.0.0.1:3261,1"]), member(2, ["127.0.0.1:3262,2"]), member(3, ["[::1]:3263,3"]),
    ]
    /// Node 2 of ``members``, lease held.
    static func node2(lease: String = "held") -> PortGroupStates.Inputs {
        PortGroupStates.Inputs(localGroups: [2], localNode: NodeID(2), lease: lease, members: members)
    }

    static func group(_ id: UInt16, _ state: AsymmetricAccessState, preferred: Bool = false) -> TargetPortGroupStatus {
        TargetPortGroupStatus(
            group: id, state: state, relativeTargetPorts: [id], preferred: preferred,
            statusCode: state == .activeOptimized ? .none : .alteredImplicitly)
    }

    @Test func singleNodeHasOneActiveGroupPerPortalGroup() {
        let states = PortGroupStates(localGroups: [2, 1])
        #expect(states.portGroups() == [Self.group(1, .activeOptimized), Self.group(2, .activeOptimized)])
        #expect(states.accessState(ofGroup: 2) == .activeOptimized)
        #expect(states.accessState(ofGroup: 3) == nil)
    }

    @Test func clusterHasOneGroupPerMember() {
        #expect(
            PortGroupStates.groups(Self.node2())
                == [Self.group(1, .activeOptimized), Self.group(2, .activeOptimized), Self.group(3, .activeOptimized)])
    }

    /// Held → active/optimized, acquiring → standby, lapsed → unavailable: only this node's group.
    @Test(arguments: [
        ("held", AsymmetricAccessState.activeOptimized), ("acquiring", .standby), ("lapsed", .unavailable),
    ])
    func theLocalGroupFollowsTheLease(_ lease: String, _ state: AsymmetricAccessState) {
        #expect(
            PortGroupStates.groups(Self.node2(lease: lease))
                == [Self.group(1, .activeOptimized), Self.group(2, state), Self.group(3, .activeOptimized)])
    }

    /// A member held dead or fenced is unavailable through every survivor; the survivors stay active/optimized.
    @Test func aFailedMemberIsUnavailable() {
        var inputs = Self.node2()
        inputs.absent = [NodeID(3)]
        #expect(
            PortGroupStates.groups(inputs)
                == [Self.group(1, .activeOptimized), Self.group(2, .activeOptimized), Self.group(3, .unavailable)])
    }

    /// `alua_states` sets other groups' states (an unknown code is unavailable) and any group's
    /// PREF; this node's own state stays its lease's.
    @Test func aluaStatesOverrideOtherGroups() {
        var inputs = Self.node2()
        inputs.overrides = [
            ALUAStateRecord(targetPortGroup: 1, nodeID: NodeID(1), state: 3),
            ALUAStateRecord(targetPortGroup: 2, nodeID: NodeID(2), state: 3, preferred: true),
            ALUAStateRecord(targetPortGroup: 3, nodeID: NodeID(3), state: 0x0E),
            ALUAStateRecord(targetPortGroup: 9, nodeID: NodeID(9), state: 0),
        ]
        #expect(
            PortGroupStates.groups(inputs)
                == [
                    Self.group(1, .unavailable), Self.group(2, .activeOptimized, preferred: true),
                    Self.group(3, .unavailable),
                ])
    }

    @Test func portalGroupTagsOfTargetAddresses() {
        #expect(PortGroupStates.portalGroupTag("127.0.0.1:3260,1") == 1)
        #expect(PortGroupStates.portalGroupTag("[fe80::1]:3260,65535") == 65535)
        #expect(PortGroupStates.portalGroupTag("127.0.0.1:3260") == nil)
        #expect(PortGroupStates.portalGroupTag("127.0.0.1:3260,x") == nil)
    }

    static let nexus = ITNexus(
        initiatorName: "iqn.1994-05.com.redhat:a", isid: 1, targetName: "iqn.2026-11.dev.tessera:a", portalGroupTag: 2)

    static func run(_ t: SCSITargetDevice, _ cdb: [UInt8]) async -> SCSIResponse {
        await t.execute(
            SCSICommand(
                lun: LUNAddress.encode(0), cdb: cdb, nexus: nexus, taskTag: .random(in: 0...UInt32.max),
                expectedDataTransferLength: 0))
    }

    static func sense(_ r: SCSIResponse) -> [UInt8] {
        r.sense.count >= 14 ? [r.sense[2] & 0x0F, r.sense[12], r.sense[13]] : []
    }

    static let testUnitReady: [UInt8] = [0, 0, 0, 0, 0, 0]

    /// A lease that lapses tells the device (06/2A/06, then 02/04/0C); an
    /// input that changes no group tells nobody; the lease returning does.
    @Test func aChangeQueuesAsymmetricAccessStateChanged() async {
        let states = PortGroupStates(localGroups: [2], localNode: NodeID(2))
        await states.update { $0 = Self.node2() }
        let device = SCSITargetDevice(
            logicalUnits: [
                0: LogicalUnit(
                    configuration: LogicalUnitConfiguration(serial: "TSR-ALUA", identifier: 1),
                    device: MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64)))
            ], portGroups: states)
        states.notify([device])
        _ = await Self.run(device, Self.testUnitReady)  // power on
        #expect(await Self.run(device, Self.testUnitReady).status == .good)
        #expect(await states.update { $0.lease = "lapsed" })
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x06, 0x2A, 0x06])
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x02, 0x04, 0x0C])
        #expect(!(await states.update { $0.members = Self.members }))
        #expect(await states.update { $0.lease = "held" })
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x06, 0x2A, 0x06])
        #expect(await Self.run(device, Self.testUnitReady).status == .good)
    }

    /// The new state is shown only once its 06/2A/06 is queued: while the
    /// attention is on its way a command still meets the old state, never the
    /// new one without the attention ahead of it (the lease coming back).
    @Test func aNewStateShowsOnlyAfterItsUnitAttention() async {
        let states = PortGroupStates(localGroups: [2], localNode: NodeID(2))
        await states.update { $0 = Self.node2(lease: "lapsed") }
        let context = HeldUnitAttentionContext(SharedLogicalUnitContext())
        let device = SCSITargetDevice(
            logicalUnits: [
                0: LogicalUnit(
                    configuration: LogicalUnitConfiguration(serial: "TSR-ALUA", identifier: 1),
                    device: MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64)),
                    context: context)
            ], portGroups: states)
        states.notify([device])
        _ = await Self.run(device, Self.testUnitReady)  // power on
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x02, 0x04, 0x0C])
        context.holdNextUnitAttention()
        let update = Task { await states.update { $0.lease = "held" } }
        while context.held == 0 { await Task.yield() }
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x02, 0x04, 0x0C])
        #expect(states.accessState(ofGroup: 2) == .unavailable)
        context.release()
        #expect(await update.value)
        #expect(states.accessState(ofGroup: 2) == .activeOptimized)
        #expect(Self.sense(await Self.run(device, Self.testUnitReady)) == [0x06, 0x2A, 0x06])
        #expect(await Self.run(device, Self.testUnitReady).status == .good)
    }

    /// Alone in the store nobody can act on this node's absence: its groups stay
    /// active/optimized whatever the lease (the lease guards against split brain).
    @Test(arguments: ["held", "acquiring", "lapsed"])
    func aLoneMemberIsNotGatedByItsLease(_ lease: String) {
        let alone = PortGroupStates.Inputs(
            localGroups: [1], localNode: NodeID(1), lease: lease, members: Self.members.filter { $0.nodeID == NodeID(1) })
        #expect(PortGroupStates.groups(alone).map(\.state) == [.activeOptimized])
        #expect(PortGroupStates.groups(Self.node2(lease: "lapsed")).first { $0.group == 2 }?.state == .unavailable)
    }

    /// NodeRuntime's devices without a store: every configured portal group, active/optimized.
    @Test func targetDevicesReportTheConfiguredPortalGroups() async throws {
        let configuration = try NodeConfiguration.parse(
            """
            [[portal]]
            listen = "127.0.0.1:3260"
            group = 1
            [[portal]]
            listen = "127.0.0.1:3261"
            group = 2
            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            [[target.lun]]
            id = 0
            size = "1MiB"
            backing = "memory"
            """, source: "test")
        let lun = try #require(configuration.targets.first?.luns.first)
        let devices = NodeRuntime.targetDevices(
            configuration: configuration,
            units: [
                OpenedLogicalUnit(
                    targetName: "iqn.2026-11.dev.tessera:a", lun: lun,
                    device: MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 2048)))
            ])
        let device = try #require(devices["iqn.2026-11.dev.tessera:a"])
        _ = await Self.run(device, Self.testUnitReady)  // power on
        let rtpg = await Self.run(device, [0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
        #expect(
            rtpg.dataIn?.array(0..<rtpg.dataInLength)
                == [0, 0, 0, 24, 0x00, 0x8F, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x00, 0x8F, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])
    }
}
