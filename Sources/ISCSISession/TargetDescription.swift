/// One iSCSI target this node exports, as login and discovery see it.
public struct TargetDescription: Sendable, Equatable {
    /// The iSCSI name (IQN/EUI/NAA), compared case-sensitively after the
    /// initiator's lower-casing rules (RFC 7143 §4.2.7: names are normalized lower case).
    public var name: String
    /// TargetAlias sent in login responses when set.
    public var alias: String?
    /// The portal group tag used for `sendTargetsAddresses` entries lacking `,tag`.
    public var portalGroupTag: UInt16
    /// `TargetAddress` values for SendTargets, e.g. `"127.0.0.1:3260,1"` (every node's portal).
    public var sendTargetsAddresses: [String]
    /// Initiator names allowed to see and log in to this target; empty = everyone.
    public var allowedInitiators: [String]
    /// CHAP credentials an initiator must prove; nil = AuthMethod=None is accepted.
    public var chap: CHAPCredentials?
    /// CHAP credentials of one initiator, by its lower-cased name; they take
    /// the place of ``chap`` for that initiator.
    public var initiatorCHAP: [String: CHAPCredentials] = [:]
    /// Where the ACL and CHAP are read while the node runs; when it holds an
    /// entry for this target, that entry replaces ``allowedInitiators``,
    /// ``chap`` and ``initiatorCHAP``.
    public var accessRules: TargetAccessRules?

    /// Creates a target description.
    public init(
        name: String, alias: String? = nil, portalGroupTag: UInt16 = 1, sendTargetsAddresses: [String] = [],
        allowedInitiators: [String] = [], chap: CHAPCredentials? = nil
    ) {
        self.name = name
        self.alias = alias
        self.portalGroupTag = portalGroupTag
        self.sendTargetsAddresses = sendTargetsAddresses
        self.allowedInitiators = allowedInitiators
        self.chap = chap
    }

    /// The ACL and CHAP in force now: the live rules' entry, else this description's own.
    public var access: TargetAccess {
        accessRules?.access(target: name)
            ?? TargetAccess(allowedInitiators: allowedInitiators, chap: chap, initiatorCHAP: initiatorCHAP)
    }

    /// This description with the access in force now written into it and no
    /// live rules: what one login works with from start to end.
    public var snapshot: TargetDescription {
        var copy = self
        let now = access
        copy.allowedInitiators = now.allowedInitiators
        copy.chap = now.chap
        copy.initiatorCHAP = now.initiatorCHAP
        copy.accessRules = nil
        return copy
    }

    /// Whether `initiatorName` passes this target's ACL (iSCSI names compare case-insensitively).
    public func allows(initiator initiatorName: String) -> Bool {
        access.allows(initiator: initiatorName)
    }

    /// The CHAP credentials `initiatorName` must prove: its own, else the target's; nil = none.
    public func chap(for initiatorName: String) -> CHAPCredentials? {
        access.chap(for: initiatorName)
    }

    /// The SendTargets `TargetAddress` values, each with a portal group tag.
    var targetAddresses: [String] {
        sendTargetsAddresses.map { $0.contains(",") ? $0 : "\($0),\(portalGroupTag)" }
    }
}
