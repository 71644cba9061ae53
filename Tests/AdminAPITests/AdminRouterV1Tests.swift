import Foundation
import Testing

@testable import AdminAPI

/// A cluster of three as a node would report it: node 1 failed over, its
/// replicas stale, one resync running on this node.
struct FakeState: AdminState {
    var failing = false

    static let target = "iqn.2026-11.dev.tessera:cluster"

    func health() -> HealthReport {
        HealthReport(
            nodeID: 2, peerAddress: "127.0.0.1:9002", lease: "held", mayChangeContext: true,
            millisecondsSinceQuorumContact: 10, leaderID: 2, targets: [Self.target], lunCount: 1, version: "0.1.0-dev")
    }

    func cluster() async throws -> ClusterStatus {
        if failing { throw AdminStateError("no quorum") }
        return ClusterStatus(
            answeredBy: 2, version: "0.1.0-dev", storeLeader: 2,
            members: [
                .init(
                    id: 1, storeAddress: "127.0.0.1:9001", peerAddress: "127.0.0.1:9101",
                    iscsiPortals: ["127.0.0.1:3261,1"], role: "voter",
                    lease: .init(beats: 40, fenced: true, liveness: "dead")),
                .init(
                    id: 2, storeAddress: "127.0.0.1:9002", peerAddress: "127.0.0.1:9102",
                    iscsiPortals: ["127.0.0.1:3262,2"], role: "leader",
                    lease: .init(beats: 90, fenced: false, liveness: "alive")),
            ],
            portGroups: [
                .init(id: 1, node: 1, state: "unavailable", preferred: false),
                .init(id: 2, node: 2, state: "active/optimized", preferred: false),
            ])
    }

    func luns() async throws -> [LUNStatus] {
        if failing { throw AdminStateError("no quorum") }
        return [
            LUNStatus(
                target: Self.target, lun: 0, sizeBytes: 16 << 20, blockSize: 512, serial: "TSR-0",
                layout: .init(lunID: "0x6001", subUnitBytes: 8 << 20, replicas: 2, subUnitCount: 2),
                subUnits: [
                    .init(
                        index: 0, epoch: 3, primary: 2, secondaries: [1],
                        replicas: [.init(node: 2, state: "in_sync"), .init(node: 1, state: "stale")]),
                    .init(
                        index: 1, epoch: 5, primary: 3, secondaries: [2],
                        replicas: [
                            .init(node: 3, state: "in_sync"),
                            .init(
                                node: 2, state: "resyncing",
                                resync: .init(percent: 42.04, bytesDone: 10, bytesTotal: 20, bytesPerSecond: 5)),
                        ]),
                ]),
            LUNStatus(
                target: "iqn.2026-11.dev.tessera:other", lun: 3, sizeBytes: 1 << 20, blockSize: 4096, serial: "S3",
                layout: nil, subUnits: []),
        ]
    }

    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? {
        guard target == Self.target, lun == 0 else { return nil }
        return ReservationStatus(
            target: target, lun: lun, generation: 7, aptpl: false,
            registrations: [
                .init(
                    key: ReservationStatus.keyText(0xabc),
                    nexus: .init(
                        initiatorPort: "iqn.1994-05.com.redhat:h1,i,0x23d000000001", targetPort: "\(target),t,0x0001"),
                    aptpl: false)
            ],
            reservation: .init(
                key: ReservationStatus.keyText(0xabc),
                holder: .init(
                    initiatorPort: "iqn.1994-05.com.redhat:h1,i,0x23d000000001", targetPort: "\(target),t,0x0001"),
                type: ReservationStatus.Reservation.typeName(1), typeCode: 1, scope: 0),
            spc2Reservation: nil)
    }

    func targets() async throws -> [TargetStatus] {
        [
            TargetStatus(
                name: Self.target, alias: "tessera-cluster", luns: [0], acl: ["iqn.1994-05.com.redhat:h1"],
                chap: .init(user: "alice", mutual: true))
        ]
    }

    /// Node 2 (this one) holds TSIH 5 live; node 3 published TSIH 1.
    static let sessions = [
        SessionStatus(
            node: 2, tsih: 5, initiator: "iqn.1994-05.com.redhat:h1", isid: "0x23d000001", target: target,
            portalGroup: 2, portal: "127.0.0.1:3262", initiatorAddress: "127.0.0.1:51000", loggedInAt: 1_800_000_000,
            source: "live"),
        SessionStatus(
            node: 3, tsih: 1, initiator: "iqn.1994-05.com.redhat:h2", isid: "0x23d000002", target: target,
            portalGroup: 3, portal: "127.0.0.1:3263", initiatorAddress: "127.0.0.1:51001", loggedInAt: 1_800_000_100,
            source: "published"),
    ]

    func sessions() async throws -> [SessionStatus] {
        if failing { throw AdminStateError("no quorum") }
        return Self.sessions
    }

    func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose? {
        guard let session = try await sessions().first(where: { $0.node == node && $0.tsih == tsih }) else { return nil }
        return SessionClose(session: session, outcome: node == 2 ? "closed" : "requested")
    }
}

@Suite struct AdminRouterV1Tests {
    static let token = AdminToken("s3cret-token-value")
    static let bearer = "Bearer s3cret-token-value"
    static let protectedPaths = [
        "/v1/cluster", "/v1/luns", "/v1/luns/0", "/v1/luns/0/reservations", "/v1/targets", "/v1/luns/x",
        "/v1/luns/0?target=iqn.2026-11.dev.tessera:cluster",
    ]

    func get(_ uri: String, authorization: String? = bearer, state: FakeState = FakeState(), method: String = "GET")
        async -> AdminResponse
    {
        await AdminRouter.respond(
            AdminRequest(method: method, uri: uri, authorization: authorization), state: state, token: Self.token)
    }

    func errorBody(_ response: AdminResponse) throws -> AdminErrorBody {
        try AdminJSON.decoder.decode(AdminErrorBody.self, from: Data(response.body.utf8))
    }

    @Test(arguments: [
        ("/v1/cluster", 200), ("/v1/luns", 200), ("/v1/luns/0", 200), ("/v1/luns/0/reservations", 200),
        ("/v1/targets", 200), ("/v1/luns/3", 200), ("/v1/luns/3/reservations", 404), ("/v1/luns/9", 404),
        ("/v1/luns/0?target=iqn.2026-11.dev.tessera:cluster", 200), ("/v1/luns/0?target=iqn.x:nope", 404),
        ("/v1/luns/0?target=", 400), ("/v1/luns/abc", 400), ("/v1/luns/-1", 400), ("/v1/luns/16384", 400),
        ("/v1/luns/99999999999999999999999", 400), ("/v1", 404), ("/v1/nodes/1/frob", 404), ("/v2/cluster", 404),
        ("/", 404), ("/v1/luns/0/reservations/x", 404), ("/health", 200), ("/metrics", 200),
    ])
    func statuses(uri: String, status: Int) async throws {
        let response = await get(uri)
        #expect(response.status == status, "\(uri): \(response.body)")
        #expect(response.contentType.hasPrefix(uri == "/metrics" ? "text/plain" : "application/json"))
        if status >= 400 {
            let body = try errorBody(response)
            #expect(!body.error.isEmpty && !body.hint.isEmpty)
        }
    }

    @Test(arguments: protectedPaths)
    func everyProtectedRouteNeedsTheToken(uri: String) async throws {
        for authorization in [
            nil, "Bearer wrong", "Bearer s3cret-token-valu", "Bearer s3cret-token-value2", "Basic abc",
            "s3cret-token-value", "Bearer", "",
        ] as [String?] {
            let response = await get(uri, authorization: authorization)
            #expect(response.status == 401, "\(uri) with \(authorization ?? "nothing")")
            let body = try errorBody(response)
            #expect(body.hint.contains("Bearer"))
            #expect(response.headers["WWW-Authenticate"] != nil)
            #expect(!response.body.contains("s3cret-token-value"), "the token is never echoed")
        }
        #expect(
            await get(uri, authorization: "bearer  s3cret-token-value ").status != 401, "scheme is case-insensitive")
    }

    @Test func healthAndMetricsNeedNoToken() async {
        #expect(await get("/health", authorization: nil).status == 200)
        #expect(await get("/metrics", authorization: nil).status == 200)
        #expect(await get("/health", authorization: nil).body == FakeState().health().json, "format unchanged")
    }

    @Test func withoutATokenEveryRouteIsOpen() async {
        for uri in Self.protectedPaths where !uri.contains("/x") {
            let response = await AdminRouter.respond(
                AdminRequest(method: "GET", uri: uri), state: FakeState(), token: nil)
            #expect(response.status == 200, "\(uri)")
        }
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "PATCH"])
    func otherMethodsGet405WithAllow(method: String) async throws {
        for uri in ["/v1/cluster", "/v1/luns/0/reservations", "/health", "/v1/luns/abc"] where !(uri.hasSuffix("reservations") && method == "DELETE") {
            let response = await get(uri, method: method)
            #expect(response.status == 405, "\(method) \(uri)")
            #expect(response.headers["Allow"] == (uri.hasSuffix("reservations") ? "GET, HEAD, DELETE" : "GET, HEAD"))
            _ = try errorBody(response)
        }
        #expect(await get("/v1/cluster", authorization: nil, method: method).status == 401, "auth first")
    }

    @Test func unreadableStateIs503WithAHint() async throws {
        let response = await get("/v1/luns/0", state: FakeState(failing: true))
        #expect(response.status == 503)
        #expect(try errorBody(response).hint.contains("--node"))
    }

    @Test func ambiguousLUNNumberAsksForTheTarget() {
        let a = LUNStatus(
            target: "iqn.a:x", lun: 1, sizeBytes: 0, blockSize: 512, serial: "", layout: nil, subUnits: [])
        var b = a
        b.target = "iqn.b:y"
        guard case .failure(let failure) = AdminRouter.pick(LUNSelector(lun: 1), from: [a, b]) else {
            Issue.record("two LUN 1s must not pick one")
            return
        }
        #expect(failure.status == 400 && failure.hint.contains("?target="))
        #expect(AdminRouter.pick(LUNSelector(target: "iqn.b:y", lun: 1), from: [a, b]) == .success(b))
    }

    @Test func errorTextQuotesRequestSafely() async throws {
        let response = await get("/v1/luns/%0A\u{1}")
        let body = try errorBody(response)
        #expect(response.status == 400)
        #expect(!body.error.contains("\u{1}"))
    }

    @Test func lunJSON() async throws {
        let response = await get("/v1/luns/0")
        let lun = try AdminJSON.decoder.decode(LUNStatus.self, from: Data(response.body.utf8))
        #expect(lun == (try await FakeState().luns())[0])
        #expect(response.body.contains(#""sub_unit_bytes" : 8388608"#))
        #expect(response.body.contains(#""state" : "stale""#))
        #expect(response.body.contains(#""percent" : 42"#))
        #expect(response.body.contains(#""secondaries" : ["#))
    }

    @Test func clusterJSON() async throws {
        let response = await get("/v1/cluster")
        let status = try AdminJSON.decoder.decode(ClusterStatus.self, from: Data(response.body.utf8))
        #expect(status == (try await FakeState().cluster()))
        for key in [
            "\"answered_by\"", "\"store_leader\"", "\"port_groups\"", "\"iscsi_portals\"", "\"liveness\"", "\"fenced\"",
        ] {
            #expect(response.body.contains(key), "\(key)")
        }
        // Sorted keys: answered_by comes before members before port_groups.
        let body = response.body
        if let a = body.range(of: "answered_by"), let m = body.range(of: "\"members\""),
            let p = body.range(of: "port_groups")
        {
            #expect(a.lowerBound < m.lowerBound && m.lowerBound < p.lowerBound)
        }
    }

    @Test func reservationsJSON() async throws {
        let response = await get("/v1/luns/0/reservations")
        let status = try AdminJSON.decoder.decode(ReservationStatus.self, from: Data(response.body.utf8))
        #expect(status.generation == 7)
        #expect(status.registrations.first?.key == "0x0000000000000abc")
        #expect(status.reservation?.type == "write_exclusive")
        #expect(response.body.contains(#""spc2_reservation""#) == false || response.body.contains("null"))
    }

    @Test func targetsJSONShowsCHAPUserOnly() async throws {
        let response = await get("/v1/targets")
        #expect(response.body.contains(#""chap" : {"#))
        #expect(response.body.contains(#""mutual" : true"#))
        #expect(response.body.contains(#""user" : "alice""#))
        #expect(!response.body.lowercased().contains("secret"))
    }

    @Test func constantTimeComparison() {
        #expect(AdminToken("abc")?.accepts(authorization: "Bearer abc") == true)
        #expect(AdminToken("abc")?.accepts(authorization: "Bearer abd") == false)
        #expect(AdminToken("abc")?.accepts(authorization: "Bearer ab") == false)
        #expect(AdminToken("abc")?.accepts(authorization: "Bearer abcabc") == false)
        #expect(AdminToken("") == nil && AdminToken(" \n") == nil)
        #expect(
            AdminToken("tok\n")?.accepts(authorization: "Bearer tok") == true,
            "a token file's newline is not part of it")
        #expect("\(AdminToken("abc")!)" == "<admin token>", "never printed")
    }

    @Test func routeTable() {
        #expect(AdminRouter.route(uri: "/v1/luns/12/reservations?x=1") == .success(.reservations(LUNSelector(lun: 12))))
        #expect(AdminRouter.route(uri: "//v1//cluster/") == .success(.cluster))
        #expect(
            AdminRouter.route(uri: "/v1/luns/0?target=iqn.2026-11.dev.tessera%3Acluster")
                == .success(.lun(LUNSelector(target: "iqn.2026-11.dev.tessera:cluster", lun: 0))))
        #expect(AdminRoute.health.isProtected == false && AdminRoute.cluster.isProtected)
    }
}
