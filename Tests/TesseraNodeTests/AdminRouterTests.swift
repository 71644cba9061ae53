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

    @Test func metricsText() {
        let text = Self.report(held: false).metrics
        #expect(text.contains("tessera_store_lease_held{node=\"2\"} 0"))
        #expect(text.contains("tessera_luns{node=\"2\"} 1"))
    }
}
