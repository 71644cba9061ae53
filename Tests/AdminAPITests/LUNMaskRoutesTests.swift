import Foundation
import Testing

@testable import AdminAPI

/// `/v1/targets/{iqn}/luns/{n}/initiators[/{initiator}]`: routing and validation.
@Suite struct LUNMaskRoutesTests {
    static let target = "iqn.2026-11.dev.tessera:cluster"

    func change(_ method: String, _ uri: String) -> Result<AccessChange, AdminFailure> {
        AdminRouter.route(uri: uri).flatMap { route in
            AdminRouter.accessChange(AdminRequest(method: method, uri: uri), route: route).map(\.change)
        }
    }

    @Test func routesNameTheChange() throws {
        let base = "/v1/targets/\(Self.target)/luns/3/initiators"
        #expect(try change("PUT", base + "/IQN.1994-05.com.redhat:H1").get() == .mask(target: Self.target, lun: 3, initiator: "iqn.1994-05.com.redhat:h1"))
        #expect(try change("DELETE", base + "/iqn.1994-05.com.redhat:h1").get() == .unmask(target: Self.target, lun: 3, initiator: "iqn.1994-05.com.redhat:h1"))
        #expect(try change("DELETE", base).get() == .clearMask(target: Self.target, lun: 3))
        #expect(AdminRouter.route(uri: base).map(\.methods) == .success(["DELETE"]))
        #expect(AdminRouter.route(uri: base + "/iqn.x:y").map(\.methods) == .success(["PUT", "DELETE"]))
    }

    @Test(arguments: [
        ("/v1/targets/iqn.t:a/luns/x/initiators/iqn.h:1", 400), ("/v1/targets/iqn.t:a/luns/16384/initiators", 400),
        ("/v1/targets/iqn.t:a/luns/-1/initiators", 400), ("/v1/targets/iqn.t:a/luns/1/hosts/iqn.h:1", 404),
        ("/v1/targets/iqn.t:a/luns/1/initiators/iqn.h:1/x", 404),
    ])
    func badPathsAreRefused(uri: String, status: Int) {
        if case .failure(let failure) = AdminRouter.route(uri: uri) {
            #expect(failure.status == status, "\(uri)")
        } else {
            Issue.record("\(uri) routed")
        }
    }

    @Test func aBadInitiatorNameIsA400() {
        guard case .failure(let failure) = change("PUT", "/v1/targets/iqn.t:a/luns/1/initiators/not%20a%20name") else {
            Issue.record("accepted")
            return
        }
        #expect(failure.status == 400 && failure.hint.contains("iqn."))
    }

    @Test func theRouterAnswers405ForAPutWithoutAnInitiatorAnd401WithoutTheToken() async {
        let token = AdminToken("s3cret-token-value")
        let put = await AdminRouter.respond(
            AdminRequest(method: "PUT", uri: "/v1/targets/iqn.t:a/luns/1/initiators", authorization: "Bearer s3cret-token-value"),
            state: FakeState(), token: token)
        #expect(put.status == 405 && put.headers["Allow"] == "DELETE")
        let anonymous = await AdminRouter.respond(
            AdminRequest(method: "PUT", uri: "/v1/targets/iqn.t:a/luns/1/initiators/iqn.h:1"), state: FakeState(),
            token: token)
        #expect(anonymous.status == 401)
    }
}
