/// The type of an iSCSI text key's value (RFC 7143 §6.2, §13).
enum NegotiationValueType: Sendable, Equatable {
    /// `Yes` / `No`.
    case boolean
    /// An unsigned number within a range.
    case numeric(ClosedRange<UInt64>)
    /// A comma-separated list from which the responder picks one value.
    case list
    /// A value one side declares; nothing is negotiated.
    case declarative
}

/// How the responder turns the offered value and its own into the result (RFC 7143 §6.2.2).
enum NegotiationMergeRule: Sendable, Equatable {
    /// Boolean AND ("result function is AND").
    case and
    /// Boolean OR.
    case or
    /// The smaller number.
    case minimum
    /// The larger number.
    case maximum
    /// The first value of the originator's list the responder supports.
    case listSelection
    /// Declarative: the sender's value is taken as is; no answer is due.
    case declare
}

/// Whether a key belongs to the session or to one connection (RFC 7143 §13 "SW"/"CO").
enum NegotiationScope: Sendable, Equatable {
    /// Session-wide.
    case session
    /// Per connection.
    case connection
}

/// When a key may be sent (RFC 7143 §13, "Use:").
enum NegotiationPhase: Sendable, Equatable {
    /// LO: only on the leading connection's login.
    case leadingOnly
    /// IO: during any connection's login.
    case loginOnly
    /// ALL: login and full-feature phase.
    case all
    /// FFPO: full-feature phase only (SendTargets).
    case fullFeatureOnly
    /// Security negotiation stage only (AuthMethod, CHAP_*).
    case securityOnly
}

/// Who may send a key.
enum NegotiationSender: Sendable, Equatable {
    /// Only the initiator (InitiatorName, SessionType, ...).
    case initiator
    /// Only the target (TargetAlias, TargetPortalGroupTag, ...).
    case target
    /// Either side.
    case both
}

/// One row of the key table.
struct NegotiationKey: Sendable {
    /// The key name as on the wire.
    var name: String
    /// The value type.
    var type: NegotiationValueType
    /// The RFC default, used when the key is not negotiated.
    var defaultValue: String
    /// The merge rule.
    var merge: NegotiationMergeRule
    /// Session or connection scope.
    var scope: NegotiationScope
    /// When the key may appear.
    var phase: NegotiationPhase
    /// Who may send it.
    var sender: NegotiationSender
    /// RFC 7143 §13: "Irrelevant when: SessionType=Discovery".
    var irrelevantInDiscovery: Bool = false
    /// Handled by the login state machine itself, not the operational negotiator.
    var handledByLogin: Bool = false
}

/// The key table: every key the target knows, with RFC 7143 §13 attributes.
/// Keys not here (including every `X-` and `X#` key) are answered `NotUnderstood`.
enum NegotiationKeys {
    static let maxDataSegmentRange: ClosedRange<UInt64> = 512...16_777_215

    /// All known keys.
    static let table: [NegotiationKey] = [
        // RFC 7143 §13.1
        NegotiationKey(
            name: "HeaderDigest", type: .list, defaultValue: "None", merge: .listSelection,
            scope: .connection, phase: .loginOnly, sender: .both),
        NegotiationKey(
            name: "DataDigest", type: .list, defaultValue: "None", merge: .listSelection,
            scope: .connection, phase: .loginOnly, sender: .both),
        // RFC 7143 §13.2
        NegotiationKey(
            name: "MaxConnections", type: .numeric(1...65535), defaultValue: "1", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        // RFC 7143 §13.3
        NegotiationKey(
            name: "SendTargets", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .fullFeatureOnly, sender: .initiator, handledByLogin: true),
        // RFC 7143 §13.4-§13.6, §13.9
        NegotiationKey(
            name: "TargetName", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .loginOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "InitiatorName", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .loginOnly, sender: .initiator, handledByLogin: true),
        NegotiationKey(
            name: "TargetAlias", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .all, sender: .target),
        NegotiationKey(
            name: "InitiatorAlias", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .all, sender: .initiator, handledByLogin: true),
        NegotiationKey(
            name: "TargetAddress", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .all, sender: .target),
        NegotiationKey(
            name: "TargetPortalGroupTag", type: .declarative, defaultValue: "", merge: .declare,
            scope: .session, phase: .loginOnly, sender: .target),
        // RFC 7143 §13.10, §13.11
        NegotiationKey(
            name: "InitialR2T", type: .boolean, defaultValue: "Yes", merge: .or,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        NegotiationKey(
            name: "ImmediateData", type: .boolean, defaultValue: "Yes", merge: .and,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        // RFC 7143 §13.12: declarative, each side declares what it receives.
        NegotiationKey(
            name: "MaxRecvDataSegmentLength", type: .numeric(maxDataSegmentRange), defaultValue: "8192",
            merge: .declare, scope: .connection, phase: .all, sender: .both),
        // RFC 7143 §13.13, §13.14
        NegotiationKey(
            name: "MaxBurstLength", type: .numeric(maxDataSegmentRange), defaultValue: "262144", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        NegotiationKey(
            name: "FirstBurstLength", type: .numeric(maxDataSegmentRange), defaultValue: "65536",
            merge: .minimum, scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        // RFC 7143 §13.15, §13.16
        NegotiationKey(
            name: "DefaultTime2Wait", type: .numeric(0...3600), defaultValue: "2", merge: .maximum,
            scope: .session, phase: .leadingOnly, sender: .both),
        NegotiationKey(
            name: "DefaultTime2Retain", type: .numeric(0...3600), defaultValue: "20", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both),
        // RFC 7143 §13.17
        NegotiationKey(
            name: "MaxOutstandingR2T", type: .numeric(1...65535), defaultValue: "1", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        // RFC 7143 §13.18, §13.19
        NegotiationKey(
            name: "DataPDUInOrder", type: .boolean, defaultValue: "Yes", merge: .or,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        NegotiationKey(
            name: "DataSequenceInOrder", type: .boolean, defaultValue: "Yes", merge: .or,
            scope: .session, phase: .leadingOnly, sender: .both, irrelevantInDiscovery: true),
        // RFC 7143 §13.20
        NegotiationKey(
            name: "ErrorRecoveryLevel", type: .numeric(0...2), defaultValue: "0", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both),
        // RFC 7143 §13.21
        NegotiationKey(
            name: "SessionType", type: .declarative, defaultValue: "Normal", merge: .declare,
            scope: .session, phase: .leadingOnly, sender: .initiator, handledByLogin: true),
        // RFC 7143 §13.23 (TaskReporting) and RFC 7144 §2.1 (iSCSIProtocolLevel).
        NegotiationKey(
            name: "TaskReporting", type: .list, defaultValue: "RFC3720", merge: .listSelection,
            scope: .session, phase: .leadingOnly, sender: .both),
        NegotiationKey(
            name: "iSCSIProtocolLevel", type: .numeric(0...31), defaultValue: "1", merge: .minimum,
            scope: .session, phase: .leadingOnly, sender: .both),
        // RFC 3720 §12.17-§12.18, obsoleted by RFC 7143 §13.25: markers are always off.
        NegotiationKey(
            name: "IFMarker", type: .boolean, defaultValue: "No", merge: .and,
            scope: .connection, phase: .loginOnly, sender: .both),
        NegotiationKey(
            name: "OFMarker", type: .boolean, defaultValue: "No", merge: .and,
            scope: .connection, phase: .loginOnly, sender: .both),
        NegotiationKey(
            name: "IFMarkInt", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .loginOnly, sender: .both),
        NegotiationKey(
            name: "OFMarkInt", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .loginOnly, sender: .both),
        // RFC 7143 §12 (security keys), handled by the login machine.
        NegotiationKey(
            name: "AuthMethod", type: .list, defaultValue: "None", merge: .listSelection,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "CHAP_A", type: .list, defaultValue: "", merge: .listSelection,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "CHAP_I", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "CHAP_C", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "CHAP_N", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
        NegotiationKey(
            name: "CHAP_R", type: .declarative, defaultValue: "", merge: .declare,
            scope: .connection, phase: .securityOnly, sender: .both, handledByLogin: true),
    ]

    /// The table by key name.
    static let byName: [String: NegotiationKey] = Dictionary(
        table.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
}
