/// A connection's cluster handshake failed; `reason` says which side lacked what.
public struct ClusterAuthError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    /// True when the other side answered and the secrets do not match (it
    /// refused this node's proof, or could not prove its own): trying again
    /// will not help. False when the exchange was cut short (a close, a timeout).
    public var isMismatch: Bool

    public init(_ reason: String, isMismatch: Bool = false) {
        self.reason = reason
        self.isMismatch = isMismatch
    }

    public var description: String { "cluster authentication failed: \(reason)" }
}
