import AdminAPI
import Testing

@Suite struct AdminRouterTests {
    static func report(held: Bool) -> HealthReport {
        HealthReport(
            nodeID: 2, peerAddress: "127.0.0.1:29002", lease: held ? "held" : "lapsed", mayChangeContext: held,
            millisecondsSinceQuorumContact: held ? 120 : nil, leaderID: held ? 1 : nil,
            targets: ["iqn.2026-11.dev.tessera:a\"b"], lunCount: 1, version: "0.1.0-dev")
    }

    @Test(arguments: [
        ("GET", "/health", true, 200), ("GET", "/health", false, 503), ("GET", "/health?x=1", true, 200),
        ("HEAD", "/health", true, 200), ("GET", "/metrics", false, 200), ("GET", "/", true, 404),
        ("POST", "/health", true, 405), ("GET", "/healthz", true, 404),
    ])
    func routes(method: String, uri: String, held: Bool, status: Int) {
        #expect(AdminRouter.respond(method: method, uri: uri) { Self.report(held: held) }.status == status)
    }

    @Test func healthJSON() {
        #expect(
            Self.report(held: true).json
                == #"{"status":"ok","node_id":2,"peer":"127.0.0.1:29002","lease":"held","may_change_context":true,"ms_since_quorum_contact":120,"leader_id":1,"targets":["iqn.2026-11.dev.tessera:a\"b"],"luns":1,"serving":true,"version":"0.1.0-dev"}"#
                + "\n")
        #expect(Self.report(held: false).json.contains(#""status":"degraded""#))
        #expect(Self.report(held: false).json.contains(#""leader_id":null"#))
        var forming = Self.report(held: true)
        forming.serving = false
        #expect(forming.json.contains(#""status":"starting""#) && forming.json.contains(#""serving":false"#))
    }

    @Test func replicationFields() {
        var report = Self.report(held: true)
        var replication = ReplicationHealth()
        replication.inSync = 14
        replication.stale = 1
        replication.resyncing = 1
        replication.deadNodes = [3]
        replication.resyncBytesTotal = 4096
        replication.resyncs = [
            .init(subUnit: "lun-1/2", node: 3, percent: 42.04, bytesDone: 10, bytesTotal: 20, bytesPerSecond: 5)
        ]
        report.replication = replication
        #expect(
            report.json.hasSuffix(
                #""replicas":{"in_sync":14,"stale":1,"resyncing":1},"dead_nodes":[3],"resyncs":[{"sub_unit":"lun-1/2","node":3,"percent":42.0,"bytes_done":10,"bytes_total":20,"rate_bytes_per_s":5}],"resync_bytes_total":4096}"#
                    + "\n"))
        #expect(report.metrics.contains("tessera_replicas{node=\"2\",state=\"stale\"} 1"))
        #expect(report.metrics.contains("tessera_resync_bytes_remaining{node=\"2\",sub_unit=\"lun-1/2\",target=\"3\"} 10"))
        #expect(!Self.report(held: true).json.contains("replicas"), "no replication fields before the data plane runs")
    }

    @Test func metricsText() {
        let text = Self.report(held: false).metrics
        #expect(text.contains("tessera_store_lease_held{node=\"2\"} 0"))
        #expect(text.contains("tessera_luns{node=\"2\"} 1"))
    }
}
