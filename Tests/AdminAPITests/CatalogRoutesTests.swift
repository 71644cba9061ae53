import Foundation
import Testing

@testable import AdminAPI

/// `POST /v1/targets`, `DELETE /v1/targets/{iqn}`, `POST /v1/luns`,
/// `PATCH` / `DELETE /v1/luns/{n}`: routing and validation.
@Suite struct CatalogRoutesTests {
    func change(_ method: String, _ uri: String, _ body: String = "") -> Result<CatalogChange, AdminFailure> {
        AdminRouter.route(uri: uri).flatMap { route in
            AdminRouter.catalogChange(AdminRequest(method: method, uri: uri, body: Array(body.utf8)), route: route)
                .map(\.change)
        }
    }

    func status(_ result: Result<CatalogChange, AdminFailure>) -> Int? {
        if case .failure(let failure) = result { return failure.status }
        return nil
    }

    @Test func routesNameTheChange() throws {
        #expect(
            try change("POST", "/v1/targets", #"{"name":"IQN.2026-12.dev.t:A","alias":"disks"}"#).get()
                == .createTarget(.init(name: "iqn.2026-12.dev.t:a", alias: "disks")))
        #expect(try change("DELETE", "/v1/targets/iqn.t:a").get() == .deleteTarget(name: "iqn.t:a"))
        #expect(
            try change("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67108864,"lun":3,"replicas":3}"#).get()
                == .createLUN(.init(target: "iqn.t:a", lun: 3, sizeBytes: 67_108_864, replicas: 3)))
        #expect(
            try change("PATCH", "/v1/luns/2?target=iqn.t:a", #"{"size_bytes":134217728}"#).get()
                == .resizeLUN(LUNSelector(target: "iqn.t:a", lun: 2), sizeBytes: 134_217_728))
        #expect(try change("DELETE", "/v1/luns/2?confirm=yes").get() == .deleteLUN(LUNSelector(lun: 2)))
        #expect(AdminRouter.route(uri: "/v1/luns/2").map(\.methods) == .success(["GET", "HEAD", "PATCH", "DELETE"]))
        #expect(AdminRouter.route(uri: "/v1/targets").map(\.methods) == .success(["GET", "HEAD", "POST"]))
    }

    /// A shrink is asked for with `?force=yes` or `"force": true`; the
    /// validation itself does not know the LUN's size, the store does.
    @Test func forceComesFromTheQueryOrTheBody() throws {
        let selector = LUNSelector(lun: 0)
        #expect(
            try change("PATCH", "/v1/luns/0?force=yes", #"{"size_bytes":67108864}"#).get()
                == .resizeLUN(selector, sizeBytes: 67_108_864, force: true))
        #expect(
            try change("PATCH", "/v1/luns/0", #"{"size_bytes":67108864,"force":true}"#).get()
                == .resizeLUN(selector, sizeBytes: 67_108_864, force: true))
        #expect(
            try change("PATCH", "/v1/luns/0?force=no", #"{"size_bytes":67108864}"#).get()
                == .resizeLUN(selector, sizeBytes: 67_108_864))
        #expect(
            try change("PATCH", "/v1/luns/0?target=iqn.t:a&force=true", #"{"size_bytes":67108864}"#).get()
                == .resizeLUN(LUNSelector(target: "iqn.t:a", lun: 0), sizeBytes: 67_108_864, force: true))
    }

    @Test func aTargetPatchChangesItsAliasOrPortalGroup() throws {
        #expect(
            try change("PATCH", "/v1/targets/iqn.t:a", #"{"alias":"new name"}"#).get()
                == .updateTarget(.init(name: "iqn.t:a", alias: .some("new name"))))
        #expect(
            try change("PATCH", "/v1/targets/iqn.t:a", #"{"alias":null,"portal_group_tag":3}"#).get()
                == .updateTarget(.init(name: "iqn.t:a", alias: .some(nil), portalGroupTag: 3)))
        #expect(
            try change("PATCH", "/v1/targets/iqn.t:a", #"{"alias":""}"#).get()
                == .updateTarget(.init(name: "iqn.t:a", alias: .some(nil))))
        #expect(AdminRouter.route(uri: "/v1/targets/iqn.t:a").map(\.methods) == .success(["GET", "HEAD", "PATCH", "DELETE"]))
    }

    /// A target change answers 200 with the target; an unforced shrink the store refuses is its 409.
    @Test func aTargetPatchAnswers200AndAnUnforcedShrink409() async throws {
        let response = await AdminRouter.respond(
            AdminRequest(method: "PATCH", uri: "/v1/targets/iqn.t:a", body: Array(#"{"alias":"new"}"#.utf8)),
            state: CatalogFake(), token: nil)
        #expect(response.status == 200)
        #expect(response.body.contains("\"alias\" : \"new\""))
        let refused = await AdminRouter.respond(
            AdminRequest(method: "PATCH", uri: "/v1/luns/0", body: Array(#"{"size_bytes":33554432}"#.utf8)),
            state: CatalogFake(), token: nil)
        #expect(refused.status == 409)
        #expect(refused.body.contains("--force --yes"))
        let other = await AdminRouter.respond(
            AdminRequest(method: "PUT", uri: "/v1/targets/iqn.t:a", body: Array(#"{"alias":"new"}"#.utf8)),
            state: CatalogFake(), token: nil)
        #expect(other.status == 405)
    }

    @Test(arguments: [
        ("PATCH", "/v1/luns/0?force=maybe", #"{"size_bytes":67108864}"#, 400),
        ("PATCH", "/v1/luns/0", #"{"size_bytes":67108864,"force":"yes"}"#, 400),
        ("PATCH", "/v1/luns/0?force=yes", #"{"size_bytes":512}"#, 400),
        ("PATCH", "/v1/luns/0?force=yes", #"{"size_bytes":0}"#, 400),
        ("PATCH", "/v1/targets/iqn.t:a", #"{}"#, 400),
        ("PATCH", "/v1/targets/iqn.t:a", #"{"alias":7}"#, 400),
        ("PATCH", "/v1/targets/iqn.t:a", #"{"alias":"two\nlines"}"#, 400),
        ("PATCH", "/v1/targets/iqn.t:a", #"{"portal_group_tag":0}"#, 400),
        ("PATCH", "/v1/targets/iqn.t:a", #"{"name":"iqn.t:b"}"#, 400),
    ])
    func badResizesAndTargetChangesAreRefused(method: String, uri: String, body: String, expected: Int) {
        #expect(status(change(method, uri, body)) == expected, "\(method) \(uri) \(body)")
    }

    @Test(arguments: [
        ("POST", "/v1/targets", #"{}"#, 400), ("POST", "/v1/targets", #"{"name":"not a name"}"#, 400),
        ("POST", "/v1/targets", #"{"name":"iqn.t:a","colour":"red"}"#, 400),
        ("POST", "/v1/targets", #"{"name":"iqn.t:a","portal_group_tag":0}"#, 400),
        ("POST", "/v1/luns", #"{"size_bytes":67108864}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a"}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":1000}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67109000}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67108864,"block_size":1024}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67108864,"replicas":4}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67108864,"lun":16384}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":67108864,"backing":"tape"}"#, 400),
        ("POST", "/v1/luns", #"{"target":"iqn.t:a","size_bytes":"64M"}"#, 400),
        ("PATCH", "/v1/luns/0", #"{}"#, 400), ("PATCH", "/v1/luns/0", #"{"size_bytes":-5}"#, 400),
        ("DELETE", "/v1/luns/0", "", 400), ("DELETE", "/v1/luns/0?confirm=no", "", 400),
        ("POST", "/v1/luns", "[1,2]", 400),
    ])
    func badRequestsAreRefused(method: String, uri: String, body: String, expected: Int) {
        #expect(status(change(method, uri, body)) == expected, "\(method) \(uri) \(body)")
    }

    @Test func aRefusedDeleteSaysHowToConfirm() throws {
        guard case .failure(let failure) = change("DELETE", "/v1/luns/4") else {
            Issue.record("accepted")
            return
        }
        #expect(failure.error.contains("destroys its data"))
        #expect(failure.hint.contains("confirm=yes") && failure.hint.contains("--yes"))
    }

    /// A create answers 201, the state's outcome as JSON.
    @Test func aCreateAnswers201WithTheTarget() async throws {
        let response = await AdminRouter.respond(
            AdminRequest(method: "POST", uri: "/v1/targets", body: Array(#"{"name":"iqn.2026-12.dev.t:a"}"#.utf8)),
            state: CatalogFake(), token: nil)
        #expect(response.status == 201)
        #expect(response.body.contains("\"name\" : \"iqn.2026-12.dev.t:a\""))
        let refused = await AdminRouter.respond(
            AdminRequest(method: "DELETE", uri: "/v1/targets/iqn.t:busy"), state: CatalogFake(), token: nil)
        #expect(refused.status == 409)
        #expect(refused.body.contains("still has LUNs"))
    }
}

/// A state whose catalog answers from the change alone.
private struct CatalogFake: AdminState {
    func health() -> HealthReport {
        HealthReport(
            nodeID: 1, peerAddress: "127.0.0.1:1", lease: "held", mayChangeContext: true,
            millisecondsSinceQuorumContact: 0, leaderID: 1, targets: [], lunCount: 0, version: "test")
    }
    func cluster() async throws -> ClusterStatus { throw AdminStateError("unused") }
    func luns() async throws -> [LUNStatus] { [] }
    func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? { nil }
    func targets() async throws -> [TargetStatus] { [] }
    func apply(_ change: CatalogChange, requestID: String?) async throws -> CatalogOutcome {
        switch change {
        case .createTarget(let spec): return .target(TargetStatus(name: spec.name, alias: nil, luns: [], acl: [], chap: nil))
        case .updateTarget(let update):
            return .target(TargetStatus(name: update.name, alias: update.alias ?? nil, luns: [], acl: [], chap: nil))
        case .resizeLUN(let selector, let size, let force) where size < 1 << 26 && !force:
            throw AdminFailure(
                status: 409, error: "LUN \(selector.lun) is 67108864 bytes; shrinking it would cut off data a host may use",
                hint: "--force --yes")
        case .deleteTarget(let name) where name.hasSuffix("busy"):
            throw AdminFailure(status: 409, error: "target \(name) still has LUNs 0", hint: "delete them first")
        default: throw AdminStateError("unused")
        }
    }
}
