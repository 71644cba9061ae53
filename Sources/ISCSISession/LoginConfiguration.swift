/// What the login and text machines need to know: the targets, discovery
/// authentication, this portal, and the target's offers and limits.
///
/// The target's offers (merged with the initiator's by each key's rule,
/// RFC 7143 §13): InitialR2T=No, ImmediateData=Yes, MaxBurstLength 1 MiB,
/// FirstBurstLength 256 KiB, MaxOutstandingR2T 16, MaxRecvDataSegmentLength
/// 256 KiB (declared), ErrorRecoveryLevel 0, both digests accepted. The target
/// never originates a negotiation: a key the initiator does not offer keeps its
/// RFC default, so the session must use `LoginOutcome.parameters`, not these offers.
public struct LoginConfiguration: Sendable {
    /// Every target exported through this portal.
    public var targets: [TargetDescription]
    /// CHAP for discovery sessions; nil = AuthMethod=None.
    public var discoveryCHAP: CHAPCredentials?
    /// This portal's TargetPortalGroupTag, sent in the first login response of a normal session.
    public var portalGroupTag: UInt16
    /// CHAP_A values accepted.
    public var chapAlgorithms: [CHAPAlgorithm] = [.sha256, .md5]
    /// Whether HeaderDigest=CRC32C / DataDigest=CRC32C may be selected.
    public var allowDigests: Bool = true
    /// Declared MaxRecvDataSegmentLength (what the target accepts per PDU).
    public var maxRecvDataSegmentLength: UInt32 = 262_144
    /// Offered MaxBurstLength.
    public var maxBurstLength: UInt32 = 1_048_576
    /// Offered FirstBurstLength (kept ≤ maxBurstLength).
    public var firstBurstLength: UInt32 = 262_144
    /// Offered ImmediateData.
    public var immediateData: Bool = true
    /// Offered InitialR2T.
    public var initialR2T: Bool = false
    /// Offered MaxOutstandingR2T.
    public var maxOutstandingR2T: UInt32 = 16
    /// Offered MaxConnections per session.
    public var maxConnections: UInt32 = 1
    /// Offered DefaultTime2Wait.
    public var defaultTime2Wait: UInt32 = 2
    /// Offered DefaultTime2Retain.
    public var defaultTime2Retain: UInt32 = 20
    /// Login PDUs accepted on one connection before it is closed.
    public var maxLoginPDUs: Int = 16
    /// Bound on the reassembled text of one login (all C-bit parts) or text request.
    public var maxTextLength: Int = TextParameters.defaultMaxTotalLength
    /// CmdSN window opened at login: MaxCmdSN = ExpCmdSN + commandWindow - 1.
    public var commandWindow: UInt32 = 128
    /// Largest data segment the target sends in a Text Response before continuing with the C bit
    /// (the initiator's MaxRecvDataSegmentLength bounds it further).
    public var maxTextResponseSegment: Int = 8192

    /// Creates a configuration.
    public init(targets: [TargetDescription], discoveryCHAP: CHAPCredentials? = nil, portalGroupTag: UInt16 = 1) {
        self.targets = targets
        self.discoveryCHAP = discoveryCHAP
        self.portalGroupTag = portalGroupTag
    }

    /// The target called `name` (iSCSI names compare case-insensitively, RFC 7143 §4.2.7.1),
    /// with the ACL and CHAP in force now (``TargetDescription/snapshot``).
    public func target(named name: String) -> TargetDescription? {
        let lowered = name.lowercased()
        return targets.first { $0.name.lowercased() == lowered }?.snapshot
    }
}
