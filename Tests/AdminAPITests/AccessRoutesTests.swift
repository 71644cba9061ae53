import Foundation
import Synchronization
import Testing

@testable import AdminAPI

/// A store of one target's ACL and per-initiator CHAP that remembers the
/// request ids it applied, as ``AdminState/apply(_:requestID:)`` promises.
final class AccessFakeState: AdminState {
    static let target = "iqn.2026-11.dev.tessera:cluster"
    struct Store {
        var acl: [String] = ["iqn.1994-05.com.redhat:h1"]
        var chap: [String: CHAPSetting] = [:]
        var applied: Set<String> = []
        var changes: [AccessChange] = []
    }
    let store = Mutex(Store())
    let failing: Bool

    init(failing: Bool = false) { self.failing = failing }

    func health() -> HealthReport { FakeState().health() }
    func cluster() async throws -> ClusterStatus { try await FakeState().cluster() }
    func luns() async throws -> [LUNStatus] { try await FakeState().luns() }
    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? { nil }
    func targets() async throws -> [TargetStatus] {
        let store = self.store.withLock { $0 }
        return [
            TargetStatus(
                name: Self.target, alias: nil, luns: [0], acl: store.acl, chap: nil,
                initiatorChap: store.chap.sorted { $0.key < $1.key }.map {
                    .init(initiator: $0.key, user: $0.value.user, mutual: $0.value.isMutual)
                })
        ]
    }

    func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus? {
        if failing { throw AdminStateError("no quorum") }
        guard change.target == Self.target else { return nil }
        try store.withLock { store in
            if let requestID, store.applied.contains(requestID) { return }
            switch change {
            case .allow(_, let initiator):
                if !store.acl.contains(initiator) { store.acl.append(initiator) }
            case .revoke(_, let initiator):
                guard store.acl.contains(initiator) else {
                    throw AdminFailure(status: 404, error: "\(initiator) is not in the ACL", hint: "acl list")
                }
                guard store.acl.count > 1 else {
                    throw AdminFailure(status: 409, error: "the last initiator", hint: "add another first")
                }
                store.acl.removeAll { $0 == initiator }
            case .setCHAP(_, let initiator, let setting): store.chap[initiator] = setting
            case .removeCHAP(_, let initiator): store.chap[initiator] = nil
            case .mask, .unmask, .clearMask: break
            }
            store.changes.append(change)
            if let requestID { store.applied.insert(requestID) }
        }
        return try await targets().first
    }
}

@Suite struct AccessRoutesTests {
    static let token = AdminToken("s3cret-token-value")
    static let bearer = "Bearer s3cret-token-value"
    static let target = AccessFakeState.target
    static let host2 = "iqn.2026-11.dev.tessera:host2"
    static let secret = "host2-secret-0123"
    static let mutualSecret = "target-secret-4567"

    func send(
        _ method: String, _ uri: String, json: String = "", key: String? = nil, authorization: String? = bearer,
        state: AccessFakeState
    ) async -> AdminResponse {
        await AdminRouter.respond(
            AdminRequest(
                method: method, uri: uri, authorization: authorization, idempotencyKey: key, body: Array(json.utf8)),
            state: state, token: Self.token)
    }

    func errorBody(_ response: AdminResponse) throws -> AdminErrorBody {
        try AdminJSON.decoder.decode(AdminErrorBody.self, from: Data(response.body.utf8))
    }

    func status(_ response: AdminResponse) throws -> TargetStatus {
        try AdminJSON.decoder.decode(TargetStatus.self, from: Data(response.body.utf8))
    }

    @Test func routeTable() throws {
        let t = Self.target
        #expect(try AdminRouter.route(uri: "/v1/targets/\(t)/acls").get() == .acls(target: t))
        #expect(
            try AdminRouter.route(uri: "/v1/targets/\(t)/acls/\(Self.host2)").get()
                == .acl(target: t, initiator: Self.host2))
        #expect(
            try AdminRouter.route(uri: "/v1/targets/\(t)/chap/\(Self.host2)").get()
                == .chap(target: t, initiator: Self.host2))
        // Percent-encoded segments decode.
        #expect(
            try AdminRouter.route(uri: "/v1/targets/iqn.2026-11.dev.tessera%3Acluster/acls").get()
                == .acls(target: t))
        #expect(try AdminRouter.route(uri: "/v1/targets/\(t)").get() == .target(t))
        for uri in [
            "/v1/targets/\(t)/chap", "/v1/targets/\(t)/acls/a/b", "/v1/targets/\(t)/luns/x",
            "/v1/targets/%zz/acls",
        ] {
            #expect(throws: AdminFailure.self, "\(uri)") { try AdminRouter.route(uri: uri).get() }
        }
    }

    @Test func addRemoveAndCHAPAnswerWithTheNewState() async throws {
        let state = AccessFakeState()
        let added = await send(
            "POST", "/v1/targets/\(Self.target)/acls", json: #"{"initiator": "IQN.2026-11.dev.tessera:Host2"}"#,
            state: state)
        #expect(added.status == 200, "\(added.body)")
        // Stored lower-cased: iSCSI names are normalized (RFC 7143 §4.2.7.2).
        #expect(try status(added).acl == ["iqn.1994-05.com.redhat:h1", Self.host2])
        let chap = await send(
            "PUT", "/v1/targets/\(Self.target)/chap/\(Self.host2)",
            json:
                #"{"user": "host2", "secret": "\#(Self.secret)", "mutual_user": "tgt", "mutual_secret": "\#(Self.mutualSecret)"}"#,
            state: state)
        #expect(chap.status == 200, "\(chap.body)")
        #expect(try status(chap).initiatorChap == [.init(initiator: Self.host2, user: "host2", mutual: true)])
        for response in [added, chap] {
            #expect(!response.body.contains(Self.secret) && !response.body.contains(Self.mutualSecret))
        }
        let removed = await send("DELETE", "/v1/targets/\(Self.target)/acls/\(Self.host2)", state: state)
        #expect(removed.status == 200)
        #expect(try status(removed).acl == ["iqn.1994-05.com.redhat:h1"])
        let chapGone = await send("DELETE", "/v1/targets/\(Self.target)/chap/\(Self.host2)", state: state)
        #expect(try status(chapGone).initiatorChap == [])
    }

    /// Each bad request, and a word its error must hold.
    static let badRequests: [(method: String, path: String, json: String, status: Int, says: String)] = [
        ("POST", "acls", "", 400, "initiator is required"),
        ("POST", "acls", "[1]", 400, "not a JSON object"),
        ("POST", "acls", "{", 400, "not a JSON object"),
        ("POST", "acls", #"{"initiator": 7}"#, 400, "initiator is required"),
        ("POST", "acls", #"{"initiator": "host2"}"#, 400, "not an iSCSI initiator name"),
        ("POST", "acls", #"{"initiator": "iqn.26-11.x"}"#, 400, "not an iSCSI initiator name"),
        ("POST", "acls", #"{"initiator": "eui.123"}"#, 400, "not an iSCSI initiator name"),
        ("POST", "acls", #"{"initiator": "iqn.2026-11.x", "extra": 1}"#, 400, "unknown field"),
        ("POST", "acls", #"{"initiator": "iqn.2026-11.x", "request_id": 5}"#, 400, "request_id must be"),
        ("POST", "acls", #"{"initiator": "iqn.2026-11.x", "request_id": ""}"#, 400, "request id is 1...128"),
        ("DELETE", "acls/not-a-name", "", 400, "not an iSCSI initiator name"),
        ("DELETE", "acls/iqn.2026-11.dev.tessera:nobody", "", 404, "not in the ACL"),
        ("DELETE", "acls/iqn.1994-05.com.redhat:h1", "", 409, "last initiator"),
        ("PUT", "chap/iqn.2026-11.x", "", 400, "user and secret are required"),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "u"}"#, 400, "user and secret are required"),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "", "secret": "0123456789ab"}"#, 400, "user must be 1...255"),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "01234567890"}"#, 400, "is 11 bytes"),
        (
            "PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "\#(String(repeating: "x", count: 256))"}"#, 400,
            "is 256 bytes"
        ),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "0123456789ab\n"}"#, 400, "control character"),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": 123456789012345}"#, 400, "must be a JSON string"),
        (
            "PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "0123456789ab", "mutual_user": "t"}"#, 400,
            "go together"
        ),
        (
            "PUT", "chap/iqn.2026-11.x",
            #"{"user": "u", "secret": "0123456789ab", "mutual_user": "t", "mutual_secret": "0123456789ab"}"#, 400,
            "same as secret"
        ),
        (
            "PUT", "chap/iqn.2026-11.x",
            #"{"user": "u", "secret": "0123456789ab", "mutual_user": "t", "mutual_secret": "short"}"#, 400,
            "mutual_secret is 5 bytes"
        ),
        ("PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "0123456789ab", "pass": "x"}"#, 400, "unknown field"),
        ("PUT", "chap/bad", #"{"user": "u", "secret": "0123456789ab"}"#, 400, "not an iSCSI initiator name"),
    ]

    @Test(arguments: badRequests.indices)
    func badRequestsGetAJSONErrorSayingWhatToFix(index: Int) async throws {
        let bad = Self.badRequests[index]
        let state = AccessFakeState()
        let response = await send(
            bad.method, "/v1/targets/\(Self.target)/\(bad.path)", json: bad.json, state: state)
        #expect(response.status == bad.status, "\(bad.path) \(bad.json): \(response.body)")
        #expect(response.contentType == "application/json")
        let body = try errorBody(response)
        #expect(body.error.contains(bad.says), "\(body.error)")
        #expect(!body.hint.isEmpty)
        // A rejected request changes nothing.
        if bad.status == 400 { #expect(state.store.withLock { $0.changes }.isEmpty) }
        // No error quotes a secret back.
        #expect(!response.body.contains("0123456789ab"))
    }

    @Test func unknownTargetIs404() async throws {
        let state = AccessFakeState()
        for (method, path, json) in [
            ("POST", "acls", #"{"initiator": "iqn.2026-11.x"}"#), ("DELETE", "acls/iqn.2026-11.x", ""),
            ("PUT", "chap/iqn.2026-11.x", #"{"user": "u", "secret": "0123456789ab"}"#),
            ("DELETE", "chap/iqn.2026-11.x", ""),
        ] {
            let response = await send(method, "/v1/targets/iqn.2026-11.x:nope/\(path)", json: json, state: state)
            #expect(response.status == 404, "\(method) \(path)")
            #expect(try errorBody(response).error.contains("no target"))
        }
    }

    @Test func aRetryWithTheSameRequestIDChangesNothing() async throws {
        let state = AccessFakeState()
        let body = #"{"initiator": "\#(Self.host2)"}"#
        let path = "/v1/targets/\(Self.target)/acls"
        #expect(await send("POST", path, json: body, key: "k1", state: state).status == 200)
        #expect(await send("DELETE", "\(path)/\(Self.host2)", key: "k2", state: state).status == 200)
        // The first request again (its answer was lost, say): it does not add the initiator back.
        let replay = await send("POST", path, json: body, key: "k1", state: state)
        #expect(replay.status == 200)
        #expect(try status(replay).acl == ["iqn.1994-05.com.redhat:h1"])
        // The request id in the body works the same way.
        let inBody = #"{"initiator": "\#(Self.host2)", "request_id": "k3"}"#
        _ = await send("POST", path, json: inBody, state: state)
        _ = await send("DELETE", "\(path)/\(Self.host2)", key: "k4", state: state)
        #expect(try status(await send("POST", path, json: inBody, state: state)).acl == ["iqn.1994-05.com.redhat:h1"])
        // Header and field must agree.
        let both = await send(
            "POST", path, json: #"{"initiator": "\#(Self.host2)", "request_id": "a"}"#, key: "b", state: state)
        #expect(both.status == 400)
        #expect(state.store.withLock { $0.changes.count } == 4)
    }

    @Test func changesNeedTheTokenBeforeAnythingIsChecked() async throws {
        let state = AccessFakeState()
        for authorization in [nil, "Bearer wrong"] as [String?] {
            let response = await send(
                "PUT", "/v1/targets/\(Self.target)/chap/bad-name", json: #"{"secret": "x"}"#,
                authorization: authorization, state: state)
            #expect(response.status == 401)
        }
        #expect(state.store.withLock { $0.changes }.isEmpty)
    }

    @Test(arguments: [
        ("GET", "acls"), ("PUT", "acls"), ("POST", "acls/iqn.2026-11.x"), ("GET", "chap/iqn.2026-11.x"),
        ("POST", "chap/iqn.2026-11.x"),
    ])
    func otherMethodsGet405WithAllow(method: String, path: String) async throws {
        let response = await send(method, "/v1/targets/\(Self.target)/\(path)", state: AccessFakeState())
        #expect(response.status == 405)
        let allow = try #require(response.headers["Allow"])
        #expect(!allow.contains(method) && !allow.contains("GET"))
    }

    @Test func aStoreThatCannotAnswerIs503() async throws {
        let state = AccessFakeState(failing: true)
        let response = await send(
            "POST", "/v1/targets/\(Self.target)/acls", json: #"{"initiator": "\#(Self.host2)"}"#, state: state)
        #expect(response.status == 503)
        #expect(try errorBody(response).hint.contains("retry"))
    }

    @Test func secretsAreInNoDescriptionOfAChange() {
        let setting = CHAPSetting(
            user: "host2", secret: Self.secret, mutualUser: "tgt", mutualSecret: Self.mutualSecret)
        let change = AccessChange.setCHAP(target: Self.target, initiator: Self.host2, setting)
        var dumped = ""
        dump(change, to: &dumped)
        for text in [
            "\(change)", String(describing: setting), String(reflecting: setting), "\(setting)", dumped,
            String(reflecting: change),
        ] {
            #expect(!text.contains(Self.secret) && !text.contains(Self.mutualSecret), "\(text)")
        }
        #expect("\(change)".contains("host2"))
    }
}
