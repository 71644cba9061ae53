import Foundation
import Testing

@testable import AdminAPI

/// `/v1/sessions` and `/v1/sessions/{node}/{tsih}`: routing, validation,
/// the close's two outcomes, and the token.
@Suite struct SessionRoutesTests {
    static let token = AdminToken("s3cret-token-value")

    func send(_ method: String, _ uri: String, authorization: String? = "Bearer s3cret-token-value") async
        -> AdminResponse
    {
        await AdminRouter.respond(
            AdminRequest(method: method, uri: uri, authorization: authorization), state: FakeState(), token: Self.token)
    }

    @Test(arguments: [
        ("GET", "/v1/sessions", 200), ("GET", "/v1/sessions/2/5", 200), ("GET", "/v1/sessions/2/0x5", 200),
        ("GET", "/v1/sessions/2/0X0005", 200), ("GET", "/v1/sessions/3/1", 200), ("GET", "/v1/sessions/2/6", 404),
        ("DELETE", "/v1/sessions/2/5", 200), ("DELETE", "/v1/sessions/3/1", 202), ("DELETE", "/v1/sessions/4/1", 404),
        ("GET", "/v1/sessions/0/5", 400), ("GET", "/v1/sessions/x/5", 400), ("GET", "/v1/sessions/2/0", 400),
        ("GET", "/v1/sessions/2/65536", 400), ("GET", "/v1/sessions/2/0xg", 400), ("GET", "/v1/sessions/2/-1", 400),
        ("DELETE", "/v1/sessions", 405), ("POST", "/v1/sessions/2/5", 405), ("GET", "/v1/sessions/2", 404),
        ("GET", "/v1/sessions/2/5/x", 404),
    ])
    func statuses(method: String, uri: String, status: Int) async throws {
        let response = await send(method, uri)
        #expect(response.status == status, "\(method) \(uri): \(response.body)")
        if status >= 400 {
            let body = try AdminJSON.decoder.decode(AdminErrorBody.self, from: Data(response.body.utf8))
            #expect(!body.error.isEmpty && !body.hint.isEmpty)
        }
    }

    @Test func listDecodesToTheSessionsWithSnakeCaseKeys() async throws {
        let response = await send("GET", "/v1/sessions")
        #expect(response.body.contains("\"initiator_address\" : \"127.0.0.1:51000\""))
        #expect(response.body.contains("\"logged_in_at\" : 1800000000"))
        let listed = try AdminJSON.decoder.decode([SessionStatus].self, from: Data(response.body.utf8))
        #expect(listed == FakeState.sessions)
    }

    @Test func closeSaysWhetherItClosedOrAskedTheHoldingNode() async throws {
        let local = await send("DELETE", "/v1/sessions/2/5")
        let closed = try AdminJSON.decoder.decode(SessionClose.self, from: Data(local.body.utf8))
        #expect(closed.outcome == "closed" && closed.session.tsih == 5)
        let remote = await send("DELETE", "/v1/sessions/3/1")
        #expect(remote.reason == "Accepted")
        let requested = try AdminJSON.decoder.decode(SessionClose.self, from: Data(remote.body.utf8))
        #expect(requested.outcome == "requested" && requested.session.node == 3)
    }

    @Test func everySessionRouteNeedsTheToken() async {
        for (method, uri) in [("GET", "/v1/sessions"), ("GET", "/v1/sessions/2/5"), ("DELETE", "/v1/sessions/2/5")] {
            #expect(await send(method, uri, authorization: nil).status == 401, "\(method) \(uri)")
            #expect(await send(method, uri, authorization: "Bearer wrong").status == 401, "\(method) \(uri)")
        }
    }

    @Test func aStateThatCannotReadTheStoreAnswers503() async {
        var state = FakeState()
        state.failing = true
        let response = await AdminRouter.respond(
            AdminRequest(method: "GET", uri: "/v1/sessions", authorization: "Bearer s3cret-token-value"), state: state,
            token: Self.token)
        #expect(response.status == 503)
    }

    @Test func isidTextIsTwelveHexDigits() {
        #expect(SessionStatus.isidText(0x23d000001) == "0x00023d000001")
        #expect(SessionStatus.isidText(0) == "0x000000000000")
        #expect(SessionStatus.isidText(0xFFFF_FFFF_FFFF_FFFF) == "0xffffffffffff")
    }
}
