/// A connection's cluster handshake failed; `reason` says which side lacked what.
public struct ClusterAuthError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "cluster authentication failed: \(reason)" }
}
