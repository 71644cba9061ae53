import Testing

@testable import AdminAPI
@testable import TesseraMetrics

/// The I/O figures' exposition text and the histogram it is built from.
@Suite struct IOMetricsTests {
    /// A histogram with observations at 40 µs, 100 µs (on a bound), 3 ms and 7 s.
    static func histogram() -> LatencyHistogram.Snapshot {
        let h = LatencyHistogram()
        for ns: UInt64 in [40_000, 100_000, 3_000_000, 7_000_000_000] { h.record(nanoseconds: ns) }
        return h.snapshot()
    }

    static func statistics() -> NodeIOStatistics {
        var a = LUNStatisticsSnapshot(bytesRead: 8192, bytesWritten: 4096, checkConditions: 1)
        a[.read] = 2
        a[.write] = 1
        a[.other] = 5
        a.readLatency = histogram()
        return NodeIOStatistics(
            luns: [
                .init(target: "iqn.2026-01.t:b", lun: 0, statistics: LUNStatisticsSnapshot()),
                .init(target: "iqn.2026-01.t:a", lun: 3, statistics: a),
            ], sessions: 2, connections: 3, storeTransactions: .empty)
    }

    @Test(arguments: [
        (UInt64(50_000), 0), (50_001, 1), (100_000, 1), (999_999, 4), (1_000_000, 4), (5_000_000_000, 14),
        (5_000_000_001, 15), (UInt64.max, 15), (0, 0),
    ])
    func bucketsIncludeTheirUpperBound(_ ns: UInt64, _ bucket: Int) {
        #expect(LatencyHistogram.bucket(of: ns) == bucket)
    }

    /// The compare chain and the bounds table say the same thing.
    @Test func bucketChainMatchesTheBoundsTable() {
        #expect(LatencyHistogram.upperBoundsNanoseconds.count == LatencyHistogram.bucketCount - 1)
        for (index, bound) in LatencyHistogram.upperBoundsNanoseconds.enumerated() {
            #expect(LatencyHistogram.bucket(of: bound) == index)
            #expect(LatencyHistogram.bucket(of: bound + 1) == index + 1)
        }
    }

    @Test func snapshotCountsAreCumulativeAndEndWithTheTotal() {
        let s = Self.histogram()
        #expect(s.count == 4 && s.sumNanoseconds == 7_003_140_000)
        let cumulative = s.cumulativeCounts
        #expect(cumulative.count == LatencyHistogram.bucketCount)
        #expect(zip(cumulative, cumulative.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(cumulative[0] == 1 && cumulative[1] == 2 && cumulative[5] == 2 && cumulative[6] == 3)
        #expect(cumulative[14] == 3 && cumulative.last == 4)
    }

    @Test(arguments: [
        (UInt64(50_000), "0.00005"), (2_500_000, "0.0025"), (1_000_000_000, "1"), (5_000_000_000, "5"),
        (0, "0"), (7_003_140_000, "7.00314"), (1, "0.000000001"),
    ])
    func secondsAreExactDecimals(_ ns: UInt64, _ text: String) {
        #expect(PrometheusText.seconds(nanoseconds: ns) == text)
    }

    @Test func labelValuesAreEscaped() {
        #expect(PrometheusText.escape(#"a\b"c"#) == #"a\\b\"c"#)
        #expect(PrometheusText.escape("line\nbreak") == #"line\nbreak"#)
        #expect(PrometheusText.escape("iqn.2026-01.dev.tessera:t") == "iqn.2026-01.dev.tessera:t")
    }

    @Test func aHistogramRendersBucketsSumAndCount() {
        var text = PrometheusText()
        text.histogram("x_seconds", #"node="1""#, Self.histogram())
        let lines = text.text.split(separator: "\n").map(String.init)
        #expect(lines.count == LatencyHistogram.bucketCount + 2)
        #expect(lines.first == #"x_seconds_bucket{node="1",le="0.00005"} 1"#)
        #expect(lines.contains(#"x_seconds_bucket{node="1",le="0.005"} 3"#))
        #expect(lines[LatencyHistogram.bucketCount - 1] == #"x_seconds_bucket{node="1",le="+Inf"} 4"#)
        #expect(lines.suffix(2) == [#"x_seconds_sum{node="1"} 7.00314"#, #"x_seconds_count{node="1"} 4"#])
    }

    @Test func lunFiguresRenderPerLUNSortedByTargetAndNumber() {
        let text = Self.statistics().metrics(node: 7)
        let lines = text.split(separator: "\n").map(String.init)
        let a = #"node="7",target="iqn.2026-01.t:a",lun="3""#
        let b = #"node="7",target="iqn.2026-01.t:b",lun="0""#
        #expect(lines.contains(#"tessera_iscsi_sessions{node="7"} 2"#))
        #expect(lines.contains(#"tessera_iscsi_connections{node="7"} 3"#))
        #expect(lines.contains(#"tessera_store_transaction_latency_seconds_count{node="7"} 0"#))
        #expect(lines.contains("tessera_lun_commands_total{\(a),kind=\"read\"} 2"))
        #expect(lines.contains("tessera_lun_commands_total{\(a),kind=\"compare_and_write\"} 0"))
        #expect(lines.contains("tessera_lun_commands_total{\(b),kind=\"read\"} 0"))
        #expect(lines.contains("tessera_lun_read_bytes_total{\(a)} 8192"))
        #expect(lines.contains("tessera_lun_written_bytes_total{\(a)} 4096"))
        #expect(lines.contains("tessera_lun_check_conditions_total{\(a)} 1"))
        #expect(lines.contains("tessera_lun_read_latency_seconds_bucket{\(a),le=\"+Inf\"} 4"))
        #expect(lines.contains("tessera_lun_read_latency_seconds_count{\(a)} 4"))
        #expect(lines.contains("tessera_lun_write_latency_seconds_count{\(b)} 0"))
        let first = lines.firstIndex { $0.hasPrefix("tessera_lun_commands_total{\(a)") }!
        let second = lines.firstIndex { $0.hasPrefix("tessera_lun_commands_total{\(b)") }!
        #expect(first < second)
        #expect(Self.isWellFormed(text))
    }

    @Test func peerRoundTripsAreAGaugePerPeer() {
        let text = NodeIOStatistics(peerRoundTrips: [3: 0.00025, 1: 0.0005]).metrics(node: 2)
        #expect(text.contains("# TYPE tessera_peer_round_trip_seconds gauge"))
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("tessera_peer_round_trip_seconds{") }
        #expect(lines == [#"tessera_peer_round_trip_seconds{node="2",peer="1"} 0.0005"#, #"tessera_peer_round_trip_seconds{node="2",peer="3"} 0.00025"#])
        #expect(Self.isWellFormed(text))
        #expect(!NodeIOStatistics().metrics(node: 2).contains("tessera_peer_round_trip"), "no family without a peer")
    }

    @Test func withoutAServerOrLUNsOnlyTheFamiliesRemain() {
        let text = NodeIOStatistics().metrics(node: 1)
        #expect(!text.contains("tessera_iscsi_sessions"))
        #expect(text.contains("# TYPE tessera_lun_commands_total counter"))
        #expect(!text.contains("tessera_lun_commands_total{"))
        #expect(Self.isWellFormed(text))
    }

    @Test func metricsRouteAppendsTheIOFigures() async {
        let state = IOState()
        let response = await AdminRouter.respond(
            AdminRequest(method: "GET", uri: "/metrics", authorization: nil, body: []), state: state, token: nil)
        #expect(response.status == 200)
        #expect(response.body.contains("tessera_store_lease_held{node=\"2\"} 1"))
        #expect(response.body.contains("tessera_iscsi_sessions{node=\"2\"} 2"))
        #expect(
            response.body.contains(#"tessera_lun_read_bytes_total{node="2",target="iqn.2026-01.t:a",lun="3"} 8192"#))
        #expect(Self.isWellFormed(response.body))
        // /health stays JSON without the figures.
        let health = await AdminRouter.respond(
            AdminRequest(method: "GET", uri: "/health", authorization: nil, body: []), state: state, token: nil)
        #expect(!health.body.contains("tessera_"))
    }

    /// Text format 0.0.4 as a scraper reads it: every sample line is
    /// `name{labels} value` of a family declared by a TYPE line before it,
    /// each family's samples together, no family declared twice.
    static func isWellFormed(_ text: String) -> Bool {
        guard text.hasSuffix("\n") else { return false }
        var declared: [String: String] = [:]
        var current: String?
        var seen: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, declared[String(parts[2])] == nil else { return false }
                declared[String(parts[2])] = String(parts[3])
                current = String(parts[2])
                continue
            }
            let nameEnd = line.firstIndex { $0 == "{" || $0 == " " } ?? line.endIndex
            var name = String(line[..<nameEnd])
            if declared[name] == nil {
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    let base = String(name.dropLast(suffix.count))
                    if declared[base] == "histogram" { name = base }
                }
            }
            guard declared[name] != nil, name == current || !seen.contains(name) else { return false }
            seen.insert(name)
            current = name
            guard let valueStart = line.lastIndex(of: " "), line[line.index(after: valueStart)...] != "" else {
                return false
            }
            let value = line[line.index(after: valueStart)...]
            guard Double(value) != nil || value == "NaN" else { return false }
        }
        return true
    }
}

/// A state whose only I/O figures are ``IOMetricsTests/statistics()``.
private struct IOState: AdminState {
    let base = FakeState()
    func health() -> HealthReport { base.health() }
    func cluster() async throws -> ClusterStatus { try await base.cluster() }
    func luns() async throws -> [LUNStatus] { try await base.luns() }
    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? {
        try await base.reservations(target: target, lun: lun)
    }
    func targets() async throws -> [TargetStatus] { try await base.targets() }
    func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus? {
        try await base.apply(change, requestID: requestID)
    }
    func clearReservations(target: String, lun: UInt64, requestID: String?) async throws -> ReservationStatus? {
        try await base.clearReservations(target: target, lun: lun, requestID: requestID)
    }
    func sessions() async throws -> [SessionStatus] { try await base.sessions() }
    func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose? {
        try await base.closeSession(node: node, tsih: tsih)
    }
    func ioStatistics() -> NodeIOStatistics { IOMetricsTests.statistics() }
}
