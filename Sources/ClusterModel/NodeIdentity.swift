/// The identity of a tesserad node in the cluster. It is also the node's dqlite
/// (Raft) id, so it must be non-zero and stable across restarts; the node that
/// bootstraps a new cluster has id 1.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The raw 64-bit id as dqlite sees it.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// The id that bootstraps a brand-new cluster.
    public static let bootstrap = NodeID(1)

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "node\(rawValue)" }
}

/// A TCP endpoint "host:port" a node listens on (store, peer or iSCSI port).
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible {
    /// IPv4/IPv6 literal or host name, without brackets.
    public var host: String
    /// TCP port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses "host:port" or "[v6]:port"; nil when malformed.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A node's role in the store's Raft configuration (dqlite role codes).
public enum NodeRole: UInt64, Sendable, CaseIterable, CustomStringConvertible {
    /// Replicates the log and votes in elections.
    case voter = 0
    /// Replicates the log but does not vote; promoted when a voter is lost.
    case standby = 1
    /// Neither replicates nor votes.
    case spare = 2

    public var description: String {
        switch self {
        case .voter: "voter"
        case .standby: "standby"
        case .spare: "spare"
        }
    }
}

/// One member of the store's cluster as reported by CLUSTER.
public struct ClusterMember: Hashable, Sendable {
    /// The member's node id.
    public var id: NodeID
    /// The member's store address as registered with ADD.
    public var address: String
    /// Its Raft role.
    public var role: NodeRole

    public init(id: NodeID, address: String, role: NodeRole) {
        self.id = id
        self.address = address
        self.role = role
    }
}
