/// `[cluster]`: the node's place in the replicated metadata store.
/// Absent, the node is a one-member cluster: id 1 on ``defaultPeerAddress``,
/// with its store under `data_dir/store`. There is one code path either way.
public struct ClusterSettings: Sendable, Hashable {
    /// The peer (dqlite) address a node uses when `[cluster]` names none.
    public static let defaultPeerHost = "127.0.0.1"
    /// The peer port a node uses when `[cluster]` names none and it has no portal.
    public static let defaultPeerPort: UInt16 = 9001

    /// The peer port when `cluster.peer` is not given: derived from the first
    /// portal's port (3260 → 9001), so that nodes with distinct portals on one
    /// host (tests, demos) do not collide on their store port.
    public static func defaultPeerPort(portalPort: UInt16) -> UInt16 {
        let offset = defaultPeerPort - 3260
        return portalPort <= UInt16.max - offset ? portalPort + offset : portalPort - offset
    }

    /// `node_id`: the node's id in the store (= its Raft id); non-zero, stable
    /// across restarts. Id 1 bootstraps a new cluster when its store is empty.
    public var nodeID: UInt64
    /// Host part of `peer`: where this node's store listens for members and clients.
    public var peerHost: String
    /// Port part of `peer`.
    public var peerPort: UInt16
    /// `join`: store addresses of members to find the cluster through ("host:port").
    /// Required unless `node_id` is 1.
    public var join: [String]
    /// `lease`: how long the node may go without reaching the store's quorum
    /// before it says so and refuses context changes ("2s", "500ms").
    public var lease: Duration
    /// `resync_rate`: bytes per second one resync may copy from a primary
    /// to a returning replica, so that host I/O keeps most of the disk and
    /// network ("128MiB" by default; per sub-unit being resynced).
    public var resyncRate: UInt64 = Self.defaultResyncRate
    /// The default `resync_rate`: 128 MiB/s.
    public static let defaultResyncRate: UInt64 = 128 << 20
    /// `replace_after`: how long a member may stay failed over (fenced)
    /// before it counts as gone for good: its replicas are then re-made on
    /// the other live members (full copies from the primaries). nil ("off")
    /// waits for it forever.
    public var replaceAfter: Duration? = Self.defaultReplaceAfter
    /// The default `replace_after`: 10 minutes, long enough for a reboot or
    /// a package upgrade (Ceph marks an OSD out after 600 s, Longhorn waits
    /// 600 s before replenishing a replica).
    public static let defaultReplaceAfter = Duration.seconds(600)
    /// `failback`: whether a primary hands its sub-unit back to the replica
    /// placement ranks first once that one is in sync again after a
    /// failover (true by default, spreading the primaries again). Off, the
    /// primaries stay where failover put them until a drain or an add moves
    /// them: one handover fewer per sub-unit after each failure, for an
    /// administrator who would rather move them at a quiet hour.
    public var failback = true
    /// `store_dir`: the store's data directory; nil means `data_dir/store`.
    public var storeDirectory: String?
    /// `secret_file`: the cluster secret every member proves before its
    /// store and peer connections carry anything (``ClusterSecretFile``);
    /// nil means `data_dir/cluster.secret`, made on first start by a node
    /// without `join`.
    public var secretFile: String?
    /// Host part of `wire`: the node-to-node port for sub-unit I/O
    /// (forwarding and replication); nil means the peer host.
    public var wireHost: String?
    /// Port part of `wire`; nil means the peer port + 100.
    public var wirePort: UInt16?

    /// `host:port` of the wire (node-to-node I/O) port.
    public var wireAddress: String {
        let host = wireHost ?? peerHost
        let port = wirePort ?? (peerPort <= UInt16.max - 100 ? peerPort + 100 : peerPort - 100)
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// How many members the cluster is meant to have: this node and every
    /// distinct store address in `join`. A new LUN is placed once that many
    /// have registered (or the formation wait ends).
    public var expectedMembers: Int { Set(join + [peerAddress]).count }

    public init(
        nodeID: UInt64 = 1, peerHost: String = Self.defaultPeerHost, peerPort: UInt16 = Self.defaultPeerPort,
        join: [String] = [], lease: Duration = .seconds(2), storeDirectory: String? = nil
    ) {
        self.nodeID = nodeID
        self.peerHost = peerHost
        self.peerPort = peerPort
        self.join = join
        self.lease = lease
        self.storeDirectory = storeDirectory
    }

    /// `host:port` of the peer address, brackets around an IPv6 host.
    public var peerAddress: String { peerHost.contains(":") ? "[\(peerHost)]:\(peerPort)" : "\(peerHost):\(peerPort)" }
}

/// `[admin]`: the HTTP endpoint with `GET /health`, `GET /metrics` and the
/// `/v1/...` resources `tessera` reads. Absent, the node serves no admin endpoint.
public struct AdminSettings: Sendable, Hashable, CustomStringConvertible {
    /// Host part of `listen`.
    public var host: String
    /// Port part of `listen`.
    public var port: UInt16
    /// `token`: the bearer token inline (for tests; prefer `token_file`).
    public var token: String?
    /// `token_file`: a file holding the bearer token, readable by its owner only.
    public var tokenFile: String?

    public init(host: String = "127.0.0.1", port: UInt16 = 8080, token: String? = nil, tokenFile: String? = nil) {
        self.host = host
        self.port = port
        self.token = token
        self.tokenFile = tokenFile
    }

    /// Whether `listen` is a loopback address (127.0.0.0/8, ::1, localhost):
    /// only there may the API run without a token.
    public var isLoopback: Bool { Self.isLoopback(host) }

    /// Whether a token is configured (inline or as a file).
    public var hasToken: Bool { token != nil || tokenFile != nil }

    /// The settings without the inline token's value.
    public var description: String {
        "AdminSettings(listen: \(address), token: \(token == nil ? "none" : "set"), token_file: \(tokenFile ?? "none"))"
    }

    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// `host:port`.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Durations in configuration: `"2s"`, `"500ms"`, `"1m"`, or whole seconds as an integer.
enum DurationValue {
    struct Problem: Error { var message: String }

    static func parse(_ text: String) -> Result<Duration, Problem> {
        let trimmed = text.filter { !$0.isWhitespace }
        for (suffix, scale) in [("ms", 1), ("s", 1000), ("m", 60_000)] where trimmed.hasSuffix(suffix) {
            guard let value = Int(trimmed.dropLast(suffix.count)), value > 0 else { break }
            let (ms, overflow) = value.multipliedReportingOverflow(by: scale)
            guard !overflow, ms <= 86_400_000 else { break }
            return .success(.milliseconds(ms))
        }
        return .failure(Problem(message: "\"\(text)\" is not a duration; write e.g. \"2s\" or \"500ms\" (at most a day)"))
    }
}
