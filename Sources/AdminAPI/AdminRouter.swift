/// What `GET /health` reports: the node's view of itself and of the store.
public struct HealthReport: Hashable, Sendable {
    /// The node's id in the store.
    public var nodeID: UInt64
    /// The node's store (peer) address.
    public var peerAddress: String
    /// "held", "acquiring" or "lapsed".
    public var lease: String
    /// Whether the node acknowledges context changes now.
    public var mayChangeContext: Bool
    /// Milliseconds since the last quorum contact, if there was one.
    public var millisecondsSinceQuorumContact: Int64?
    /// The store leader the last heartbeat found.
    public var leaderID: UInt64?
    /// Targets the node serves.
    public var targets: [String]
    /// LUNs the node serves.
    public var lunCount: Int
    /// The daemon version.
    public var version: String
    /// Whether the node serves its portals yet (false while the cluster forms).
    public var serving: Bool = true
    /// The replicas and resyncs (nil on a node without distributed LUNs yet).
    public var replication: ReplicationHealth?

    public init(
        nodeID: UInt64, peerAddress: String, lease: String, mayChangeContext: Bool, millisecondsSinceQuorumContact: Int64?,
        leaderID: UInt64?, targets: [String], lunCount: Int, version: String
    ) {
        self.nodeID = nodeID
        self.peerAddress = peerAddress
        self.lease = lease
        self.mayChangeContext = mayChangeContext
        self.millisecondsSinceQuorumContact = millisecondsSinceQuorumContact
        self.leaderID = leaderID
        self.targets = targets
        self.lunCount = lunCount
        self.version = version
    }

    /// "ok" while the lease is held and the node serves, "starting" while it
    /// holds the lease but waits for the cluster to form, else "degraded".
    public var status: String { !mayChangeContext ? "degraded" : serving ? "ok" : "starting" }

    /// The report as a JSON object (keys in a fixed order).
    public var json: String {
        let fields: [(String, String)] = [
            ("status", JSON.string(status)),
            ("node_id", "\(nodeID)"),
            ("peer", JSON.string(peerAddress)),
            ("lease", JSON.string(lease)),
            ("may_change_context", mayChangeContext ? "true" : "false"),
            ("ms_since_quorum_contact", millisecondsSinceQuorumContact.map { "\($0)" } ?? "null"),
            ("leader_id", leaderID.map { "\($0)" } ?? "null"),
            ("targets", "[" + targets.map(JSON.string).joined(separator: ",") + "]"),
            ("luns", "\(lunCount)"),
            ("serving", serving ? "true" : "false"),
            ("version", JSON.string(version)),
        ] + (replication?.jsonFields ?? [])
        return "{" + fields.map { "\(JSON.string($0.0)):\($0.1)" }.joined(separator: ",") + "}\n"
    }

    /// Prometheus text exposition of the same facts.
    public var metrics: String {
        """
        # HELP tessera_store_lease_held 1 while the node holds its store lease.
        # TYPE tessera_store_lease_held gauge
        tessera_store_lease_held{node="\(nodeID)"} \(mayChangeContext ? 1 : 0)
        # HELP tessera_store_ms_since_quorum_contact Milliseconds since the store quorum last answered.
        # TYPE tessera_store_ms_since_quorum_contact gauge
        tessera_store_ms_since_quorum_contact{node="\(nodeID)"} \(millisecondsSinceQuorumContact.map { "\($0)" } ?? "NaN")
        # HELP tessera_targets Targets served.
        # TYPE tessera_targets gauge
        tessera_targets{node="\(nodeID)"} \(targets.count)
        # HELP tessera_luns LUNs served.
        # TYPE tessera_luns gauge
        tessera_luns{node="\(nodeID)"} \(lunCount)

        """ + (replication?.metrics(node: nodeID) ?? "")
    }
}

/// One HTTP answer.
public struct AdminResponse: Hashable, Sendable {
    /// Status code.
    public var status: Int
    /// Reason phrase.
    public var reason: String
    /// Content-Type.
    public var contentType: String
    /// Body.
    public var body: String
    /// Further headers (`Allow`, `WWW-Authenticate`), by name.
    public var headers: [String: String]

    public init(status: Int, reason: String, contentType: String, body: String, headers: [String: String] = [:]) {
        self.status = status
        self.reason = reason
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }
}

/// Maps a request to an answer. Pure: the health report is an argument.
public enum AdminRouter {
    /// `GET /health` → 200 with the JSON report while the lease is held, 503
    /// with the same report when it is not (so that `curl -f` and load
    /// balancers see it); `GET /metrics` → text, the report's and `io`'s
    /// figures; anything else 404/405.
    public static func respond(
        method: String, uri: String, report: () -> HealthReport, io: () -> NodeIOStatistics = { NodeIOStatistics() }
    ) -> AdminResponse {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        guard path == "/health" || path == "/metrics" else {
            return AdminResponse(status: 404, reason: "Not Found", contentType: "text/plain", body: "not found\n")
        }
        guard method == "GET" || method == "HEAD" else {
            return AdminResponse(status: 405, reason: "Method Not Allowed", contentType: "text/plain", body: "GET only\n")
        }
        let report = report()
        if path == "/metrics" {
            return AdminResponse(
                status: 200, reason: "OK", contentType: "text/plain; version=0.0.4",
                body: report.metrics + io().metrics(node: report.nodeID))
        }
        return report.mayChangeContext
            ? AdminResponse(status: 200, reason: "OK", contentType: "application/json", body: report.json)
            : AdminResponse(status: 503, reason: "Service Unavailable", contentType: "application/json", body: report.json)
    }
}

/// Minimal JSON string escaping (RFC 8259 §7).
enum JSON {
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
