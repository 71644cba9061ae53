import BlockStorage
import SCSIWire

/// Where a target device learns its target port groups and their asymmetric
/// access states (implicit ALUA, SPC-4 §5.16.2.7). Read on every command, so
/// both requirements must be synchronous and cheap (no I/O, a lock at most).
/// A source that changes a state calls ``SCSITargetDevice/accessStatesChanged()``
/// first and reports the new state only once it returns: a command reads the
/// state before the unit attention queue, so whoever sees the new state also
/// meets 06/2A/06 ahead of it.
public protocol TargetPortGroupSource: Sendable {
    /// Every group of the target device, the same list on every node (RTPG).
    func portGroups() -> [TargetPortGroupStatus]
    /// The state of `group`, nil when the source does not know the group.
    /// Defaults to a search of ``portGroups()``.
    func accessState(ofGroup group: UInt16) -> AsymmetricAccessState?
}

extension TargetPortGroupSource {
    public func accessState(ofGroup group: UInt16) -> AsymmetricAccessState? {
        portGroups().first { $0.group == group }?.state
    }
}

extension SCSITargetDevice {
    /// IMPLICIT TRANSITION TIME of the extended RTPG header, in seconds (SPC-4
    /// §6.37): how long an initiator should keep retrying a transitioning group.
    /// Transitions here are sub-second pauses (ARCHITECTURE.md "ALUA").
    public static let implicitTransitionTime: UInt8 = 2

    /// The asymmetric access state of the port group `nexus` came through.
    /// Without a source the device is one group, always active/optimized; a
    /// group the source does not know cannot vouch for the unit: unavailable.
    func accessState(of nexus: ITNexus) -> AsymmetricAccessState {
        guard let portGroupSource else { return .activeOptimized }
        return portGroupSource.accessState(ofGroup: nexus.targetPortGroup) ?? .unavailable
    }

    /// The groups RTPG reports through `nexus`: the source's, always including
    /// the group `nexus` is in (VPD 0x83 names it) in the state that gates it.
    func reportedPortGroups(through nexus: ITNexus) -> [TargetPortGroupStatus] {
        var groups = portGroupSource?.portGroups() ?? []
        if !groups.contains(where: { $0.group == nexus.targetPortGroup }) {
            groups.append(
                TargetPortGroupStatus(
                    group: nexus.targetPortGroup, state: accessState(of: nexus),
                    relativeTargetPorts: [nexus.relativeTargetPortIdentifier]))
        }
        return groups
    }

    /// REPORT TARGET PORT GROUPS (SPC-4 §6.37), cut to the allocation length.
    func reportTargetPortGroups(_ r: ReportTargetPortGroups, nexus: ITNexus) -> SCSIResponse {
        let data = TargetPortGroupsData.encode(
            reportedPortGroups(through: nexus), format: r.parameterDataFormat,
            implicitTransitionTime: Self.implicitTransitionTime)
        return .data(data, allocationLength: Int(r.allocationLength))
    }

    /// What a command that passed the access gate (``AsymmetricAccessState/refusal(for:)``)
    /// is answered with when its group is unavailable, where that differs
    /// from the active states: nil when the unit runs it as usual.
    func unavailableAnswer(_ operation: CDBCommand, _ command: SCSICommand, unit: LogicalUnit) async -> SCSIResponse? {
        switch operation {
        case .requestSense(let descriptorFormat, let allocationLength):
            // INQUIRY keeps PERIPHERAL QUALIFIER 000b through an unavailable group (as LIO
            // does), although SPC-4 §5.16.2.4.5 a) allows 001b: Linux attaches its disk
            // driver only to 000b and does not rescan when the group comes back, so a host
            // logging in while a node is unavailable would never see the disk on that path.
            // REQUEST SENSE then tells why commands fail: the port's unavailable state.
            let sense = SenseData(.targetPortInUnavailableState)
            return .data(
                descriptorFormat ? sense.descriptorBytes : sense.bytes, allocationLength: Int(allocationLength))
        default:
            return nil
        }
    }

    /// Tells every nexus of every logical unit that an asymmetric access state
    /// changed: after an implicit change the device server establishes
    /// ASYMMETRIC ACCESS STATE CHANGED for every I_T nexus (SPC-4 §5.16.2.5).
    public func accessStatesChanged() async {
        for unit in logicalUnits.values {
            await unit.context.establishUnitAttention(.asymmetricAccessStateChanged, scope: .allNexuses)
        }
    }
}
