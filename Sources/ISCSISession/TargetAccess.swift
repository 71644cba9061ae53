import Synchronization

/// Who may log in to one target and what CHAP each initiator must prove.
public struct TargetAccess: Sendable, Equatable {
    /// Initiator names allowed to see and log in to the target; empty = everyone.
    public var allowedInitiators: [String]
    /// CHAP every initiator without its own credentials must prove; nil = none.
    public var chap: CHAPCredentials?
    /// CHAP of one initiator, by its lower-cased name.
    public var initiatorCHAP: [String: CHAPCredentials]

    public init(
        allowedInitiators: [String] = [], chap: CHAPCredentials? = nil, initiatorCHAP: [String: CHAPCredentials] = [:]
    ) {
        self.allowedInitiators = allowedInitiators
        self.chap = chap
        self.initiatorCHAP = initiatorCHAP
    }

    /// Whether `initiatorName` passes the ACL (iSCSI names compare case-insensitively, RFC 7143 §4.2.7.1).
    public func allows(initiator initiatorName: String) -> Bool {
        let lowered = initiatorName.lowercased()
        return allowedInitiators.isEmpty || allowedInitiators.contains { $0.lowercased() == lowered }
    }

    /// The initiator's own CHAP credentials, else the target's.
    public func chap(for initiatorName: String) -> CHAPCredentials? {
        initiatorCHAP[initiatorName.lowercased()] ?? chap
    }
}

/// The access rules of every target, replaced as a whole while the node
/// runs (the node refreshes them from the store). A login reads them once,
/// when it learns its target; SendTargets reads them for each answer.
public final class TargetAccessRules: Sendable, Equatable {
    private let rules: Mutex<[String: TargetAccess]>

    /// `rules`: by target name (any case).
    public init(_ rules: [String: TargetAccess] = [:]) {
        self.rules = Mutex(Self.lowered(rules))
    }

    /// The rules of the target called `name`; nil when there are none for it.
    public func access(target name: String) -> TargetAccess? {
        rules.withLock { $0[name.lowercased()] }
    }

    /// Replaces every target's rules; returns whether anything changed.
    @discardableResult
    public func replace(with rules: [String: TargetAccess]) -> Bool {
        let new = Self.lowered(rules)
        return self.rules.withLock { current in
            guard current != new else { return false }
            current = new
            return true
        }
    }

    /// Two sources are the same when they are the same object.
    public static func == (lhs: TargetAccessRules, rhs: TargetAccessRules) -> Bool { lhs === rhs }

    private static func lowered(_ rules: [String: TargetAccess]) -> [String: TargetAccess] {
        Dictionary(rules.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
