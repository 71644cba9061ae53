// Asymmetric logical unit access on the wire (SPC-4 §5.16.2, §6.37): the
// access states, which commands each state serves, the REPORT TARGET PORT
// GROUPS CDB and its parameter data. Implicit ALUA only: SET TARGET PORT
// GROUPS (MAINTENANCE OUT A4h/0Ah) is not in the command table, so it stays
// INVALID COMMAND OPERATION CODE.

/// A target port group's asymmetric access state (SPC-4 §6.37, table 307).
/// The cases are exactly the states this target reports; logical block
/// dependent (4h) and offline (Eh) are not offered.
public enum AsymmetricAccessState: UInt8, Sendable, Hashable, CaseIterable {
    /// Every command is served (SPC-4 §5.16.2.4.2).
    case activeOptimized = 0x0
    /// Every command is served, possibly slower (SPC-4 §5.16.2.4.3).
    case activeNonOptimized = 0x1
    /// A short list of commands is served, the rest get 02/04/0B (SPC-4 §5.16.2.4.4).
    case standby = 0x2
    /// Identification only, the rest get 02/04/0C (SPC-4 §5.16.2.4.5).
    case unavailable = 0x3
    /// Between two states: identification only, the rest get 02/04/0A (SPC-4 §5.16.2.5).
    case transitioning = 0xF

    /// Its bit in the supported-states byte of a target port group descriptor
    /// (SPC-4 §6.37, table 306: T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP).
    var supportedBit: UInt8 {
        switch self {
        case .activeOptimized: 0x01
        case .activeNonOptimized: 0x02
        case .standby: 0x04
        case .unavailable: 0x08
        case .transitioning: 0x80
        }
    }

    /// The supported-states byte: the bit of every state this target reports
    /// (O_SUP and LBD_SUP stay zero).
    public static let supportedStates: UInt8 = allCases.reduce(0) { $0 | $1.supportedBit }

    /// The sense a command of class `access` ends with through a port group in
    /// this state, nil when the command is served.
    public func refusal(for access: AsymmetricAccessClass) -> SenseReason? {
        switch self {
        case .activeOptimized, .activeNonOptimized:
            return nil
        case .standby:
            // SPC-4 §5.16.2.4.4: unsupported in standby → LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE.
            return access == .activeOnly ? .targetPortInStandbyState : nil
        case .unavailable:
            // SPC-4 §5.16.2.4.5: → LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE.
            return access == .anyState ? nil : .targetPortInUnavailableState
        case .transitioning:
            // SPC-4 §5.16.2.5 b): → LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION.
            return access == .anyState ? nil : .asymmetricAccessStateTransition
        }
    }
}

/// In which asymmetric access states a command is served: the per-state
/// command lists of SPC-4 §5.16.2.4.4 (standby), §5.16.2.4.5 (unavailable)
/// and §5.16.2.5 (transitioning), which for the commands this target offers
/// nest (transitioning ⊆ unavailable ⊆ standby). A column of the command table.
public enum AsymmetricAccessClass: Sendable, Hashable {
    /// Only through an active/optimized or active/non-optimized group (medium
    /// access, TEST UNIT READY: a path checker must see the true state).
    case activeOnly
    /// Also through a standby group: MODE SENSE/SELECT and PERSISTENT RESERVE
    /// IN/OUT (SPC-4 §5.16.2.4.4 d, e, l, m); READ CAPACITY and REPORT SUPPORTED
    /// OPERATION CODES too, under "the device server may support other commands"
    /// (they describe the unit, not its medium, and a host sizes a standby path by them).
    case alsoStandby
    /// In every state: INQUIRY, REPORT LUNS, REPORT TARGET PORT GROUPS and
    /// REQUEST SENSE (SPC-4 §5.16.2.4.5 a-c, e; §5.16.2.5 b A-D).
    case anyState
}

/// STATUS CODE of a target port group descriptor (SPC-4 §6.37, table 308).
public enum TargetPortGroupStatusCode: UInt8, Sendable, Hashable {
    /// No status available.
    case none = 0x00
    /// The state was altered by SET TARGET PORT GROUPS (not offered here).
    case alteredBySetTargetPortGroups = 0x01
    /// The state was altered by implicit asymmetric logical unit access behaviour.
    case alteredImplicitly = 0x02
}

/// One target port group as REPORT TARGET PORT GROUPS describes it.
public struct TargetPortGroupStatus: Sendable, Hashable {
    /// TARGET PORT GROUP (the VPD 0x83 type 5h designator of its ports).
    public var group: UInt16
    /// ASYMMETRIC ACCESS STATE.
    public var state: AsymmetricAccessState
    /// RELATIVE TARGET PORT IDENTIFIERs of its ports (VPD 0x83 type 4h); at least one.
    public var relativeTargetPorts: [UInt16]
    /// PREF: a preferred group for the logical unit (SPC-4 §5.16.2.6).
    public var preferred: Bool
    /// STATUS CODE: why the group is in its state.
    public var statusCode: TargetPortGroupStatusCode

    public init(
        group: UInt16, state: AsymmetricAccessState, relativeTargetPorts: [UInt16], preferred: Bool = false,
        statusCode: TargetPortGroupStatusCode = .none
    ) {
        self.group = group
        self.state = state
        self.relativeTargetPorts = relativeTargetPorts
        self.preferred = preferred
        self.statusCode = statusCode
    }
}

/// PARAMETER DATA FORMAT of REPORT TARGET PORT GROUPS (SPC-4 §6.37, table 303).
public enum TargetPortGroupsFormat: UInt8, Sendable, Hashable {
    /// 000b: a 4-byte header holding RETURN DATA LENGTH (table 304).
    case lengthOnly = 0
    /// 001b: an 8-byte header adding FORMAT TYPE and IMPLICIT TRANSITION TIME (table 305).
    case extended = 1
}

/// REPORT TARGET PORT GROUPS CDB fields (SPC-4 §6.37, table 302).
public struct ReportTargetPortGroups: Hashable, Sendable {
    public var parameterDataFormat: TargetPortGroupsFormat
    public var allocationLength: UInt32

    public init(parameterDataFormat: TargetPortGroupsFormat, allocationLength: UInt32) {
        self.parameterDataFormat = parameterDataFormat
        self.allocationLength = allocationLength
    }
}

/// REPORT TARGET PORT GROUPS parameter data (SPC-4 §6.37, tables 304-309).
public enum TargetPortGroupsData {
    /// The whole parameter data for `groups`, in their order; the executor
    /// cuts it to the allocation length (SPC-4 §4.2.5.6), RETURN DATA LENGTH
    /// stays the full length. `implicitTransitionTime` (seconds, 0 = not
    /// specified) goes into the extended header only.
    public static func encode(
        _ groups: [TargetPortGroupStatus], format: TargetPortGroupsFormat, implicitTransitionTime: UInt8
    ) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: format == .extended ? 8 : 4)
        if format == .extended {
            b[4] = TargetPortGroupsFormat.extended.rawValue << 4  // FORMAT TYPE 001b (bits 6-4)
            b[5] = implicitTransitionTime
        }
        for g in groups {
            // SPC-4 §6.37, table 306: TARGET PORT COUNT is one byte.
            let ports = g.relativeTargetPorts.prefix(Int(UInt8.max))
            var d = [UInt8](repeating: 0, count: 8)
            d[0] = (g.preferred ? 0x80 : 0) | g.state.rawValue
            d[1] = AsymmetricAccessState.supportedStates
            d.put16(g.group, at: 2)
            d[5] = g.statusCode.rawValue
            d[7] = UInt8(ports.count)
            for port in ports {
                var p = [UInt8](repeating: 0, count: 4)  // table 309: bytes 0-1 reserved
                p.put16(port, at: 2)
                d += p
            }
            b += d
        }
        // Tables 304 and 305: RETURN DATA LENGTH is n - 3, every byte after the field itself.
        b.put32(UInt32(b.count - 4), at: 0)
        return b
    }
}

extension CommandDescriptor {
    /// REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0Ah; SPC-4 §6.37).
    static let targetPortGroups: [CommandDescriptor] = [
        CommandDescriptor(
            0xA3, sa: 0x0A, "REPORT TARGET PORT GROUPS",
            usage: [0xA3, 0xEA, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], conflict: .allowed, access: .anyState
        ) { cdb throws(SenseData) in
            // SPC-4 §6.37, table 303: PARAMETER DATA FORMAT 010b-111b are reserved.
            guard let format = TargetPortGroupsFormat(rawValue: cdb[1] >> 5) else {
                throw SenseData.invalidField(byte: 1, bit: 7)
            }
            return .reportTargetPortGroups(
                ReportTargetPortGroups(parameterDataFormat: format, allocationLength: cdb.be32(6)))
        }
    ]
}
