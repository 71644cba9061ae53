import TesseraMetrics

/// The node's I/O figures that `/metrics` adds to the health report's: every
/// LUN's commands, bytes, CHECK CONDITIONs and latency, the iSCSI sessions
/// and connections open, and how long store transactions take. Read when
/// `/metrics` is asked for, so LUNs added or removed since show as they are.
public struct NodeIOStatistics: Hashable, Sendable {
    /// One LUN's figures, by target and LUN number.
    public struct LUN: Hashable, Sendable {
        public var target: String
        public var lun: UInt16
        public var statistics: LUNStatisticsSnapshot

        public init(target: String, lun: UInt16, statistics: LUNStatisticsSnapshot) {
            self.target = target
            self.lun = lun
            self.statistics = statistics
        }
    }

    /// Every LUN the node serves.
    public var luns: [LUN]
    /// Live normal iSCSI sessions (nil before the iSCSI server runs).
    public var sessions: Int?
    /// Open iSCSI connections, logged in or not (nil before the iSCSI server runs).
    public var connections: Int?
    /// Store transactions that committed, and how long each took.
    public var storeTransactions: LatencyHistogram.Snapshot?
    /// The last peer-port round trip to each other member, in seconds, by node id.
    public var peerRoundTrips: [UInt64: Double]

    public init(
        luns: [LUN] = [], sessions: Int? = nil, connections: Int? = nil,
        storeTransactions: LatencyHistogram.Snapshot? = nil, peerRoundTrips: [UInt64: Double] = [:]
    ) {
        self.luns = luns
        self.sessions = sessions
        self.connections = connections
        self.storeTransactions = storeTransactions
        self.peerRoundTrips = peerRoundTrips
    }

    /// The Prometheus text lines of these figures (each family's samples
    /// together after its HELP and TYPE; LUNs by target, then number).
    func metrics(node: UInt64) -> String {
        var text = PrometheusText()
        let nodeLabels = "node=\"\(node)\""
        if let sessions {
            text.family("tessera_iscsi_sessions", "gauge", "Live normal iSCSI sessions on this node.")
            text.sample("tessera_iscsi_sessions", nodeLabels, "\(sessions)")
        }
        if let connections {
            text.family("tessera_iscsi_connections", "gauge", "Open iSCSI connections on this node, logged in or not.")
            text.sample("tessera_iscsi_connections", nodeLabels, "\(connections)")
        }
        if let storeTransactions {
            text.family(
                "tessera_store_transaction_latency_seconds", "histogram",
                "Store transactions that committed, from the call (retries included) to the COMMIT's answer.")
            text.histogram("tessera_store_transaction_latency_seconds", nodeLabels, storeTransactions)
        }
        if !peerRoundTrips.isEmpty {
            text.family(
                "tessera_peer_round_trip_seconds", "gauge",
                "The last ping over the peer port to each other member (every 2 s; a member that does not answer is left out).")
            for (peer, seconds) in peerRoundTrips.sorted(by: { $0.key < $1.key }) {
                text.sample("tessera_peer_round_trip_seconds", "\(nodeLabels),peer=\"\(peer)\"", "\(seconds)")
            }
        }
        let luns = self.luns.sorted { ($0.target, $0.lun) < ($1.target, $1.lun) }
        // Each LUN's labels are rendered (and escaped) once.
        let labels = luns.map { lun in
            "\(nodeLabels),target=\"\(PrometheusText.escape(lun.target))\",lun=\"\(lun.lun)\""
        }
        text.family("tessera_lun_commands_total", "counter", "SCSI commands completed on the LUN, by kind.")
        for (lun, labels) in zip(luns, labels) {
            for kind in SCSICommandKind.allCases {
                text.sample("tessera_lun_commands_total", "\(labels),kind=\"\(kind.label)\"", "\(lun.statistics[kind])")
            }
        }
        let counters: [(String, String, KeyPath<LUNStatisticsSnapshot, UInt64>)] = [
            ("tessera_lun_read_bytes_total", "Bytes read from the LUN by reads that ended GOOD.", \.bytesRead),
            ("tessera_lun_written_bytes_total", "Bytes written to the LUN by writes that ended GOOD.", \.bytesWritten),
            (
                "tessera_lun_check_conditions_total", "Commands on the LUN that ended with CHECK CONDITION.",
                \.checkConditions
            ),
        ]
        for (name, help, value) in counters {
            text.family(name, "counter", help)
            for (lun, labels) in zip(luns, labels) { text.sample(name, labels, "\(lun.statistics[keyPath: value])") }
        }
        let histograms: [(String, String, KeyPath<LUNStatisticsSnapshot, LatencyHistogram.Snapshot>)] = [
            (
                "tessera_lun_read_latency_seconds",
                "Reads on the LUN, from the command reaching the target to its status.", \.readLatency
            ),
            (
                "tessera_lun_write_latency_seconds",
                "Writes on the LUN, from the command and its data reaching the target to its status.", \.writeLatency
            ),
        ]
        for (name, help, value) in histograms {
            text.family(name, "histogram", help)
            for (lun, labels) in zip(luns, labels) { text.histogram(name, labels, lun.statistics[keyPath: value]) }
        }
        return text.text
    }
}

/// Prometheus text exposition format 0.0.4, written by hand: families,
/// samples with pre-rendered labels, histograms over ``LatencyHistogram``'s buckets.
struct PrometheusText {
    private(set) var text = ""

    /// A family's HELP and TYPE lines.
    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    /// One sample; `labels` is rendered already (`a="x",b="y"`), empty for none.
    mutating func sample(_ name: String, _ labels: String, _ value: String) {
        text += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
    }

    /// A histogram's `_bucket` series (cumulative, ending with `+Inf`), `_sum` (seconds) and `_count`.
    mutating func histogram(_ name: String, _ labels: String, _ snapshot: LatencyHistogram.Snapshot) {
        let separator = labels.isEmpty ? "" : ","
        for (bound, count) in zip(Self.bucketBounds, snapshot.cumulativeCounts) {
            text += "\(name)_bucket{\(labels)\(separator)le=\"\(bound)\"} \(count)\n"
        }
        sample(name + "_sum", labels, Self.seconds(nanoseconds: snapshot.sumNanoseconds))
        sample(name + "_count", labels, "\(snapshot.count)")
    }

    /// The `le` label of each bucket, in seconds, the last `+Inf`.
    static let bucketBounds: [String] =
        LatencyHistogram.upperBoundsNanoseconds.map { seconds(nanoseconds: $0) } + ["+Inf"]

    /// `nanoseconds` as seconds in exact decimal (`2500000` → `0.0025`).
    static func seconds(nanoseconds: UInt64) -> String {
        let whole = nanoseconds / 1_000_000_000
        let fraction = nanoseconds % 1_000_000_000
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    /// A label value escaped as the format asks: backslash, double quote and line feed.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}
