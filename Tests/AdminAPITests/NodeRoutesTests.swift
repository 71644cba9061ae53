import Foundation
import Testing

@testable import AdminAPI

/// `/v1/nodes`: routing, validation and the answers.
@Suite struct NodeRoutesTests {
    func change(_ method: String, _ uri: String, _ body: String = "") -> Result<NodeChange, AdminFailure> {
        AdminRouter.route(uri: uri).flatMap { route in
            AdminRouter.nodeChange(AdminRequest(method: method, uri: uri, body: Array(body.utf8)), route: route).map(\.change)
        }
    }

    @Test func routesNameTheChange() throws {
        #expect(AdminRouter.route(uri: "/v1/nodes") == .success(.nodes))
        #expect(AdminRouter.route(uri: "/v1/nodes/3") == .success(.node(3)))
        #expect(AdminRouter.route(uri: "/v1/nodes/3/drain") == .success(.nodeDrain(3)))
        #expect(try change("POST", "/v1/nodes", #"{"id": 4}"#).get() == .add(4))
        #expect(try change("POST", "/v1/nodes/3/drain").get() == .drain(3))
        #expect(try change("DELETE", "/v1/nodes/3/drain").get() == .undrain(3))
        #expect(try change("DELETE", "/v1/nodes/3?confirm=yes").get() == .remove(3, force: false))
        #expect(try change("DELETE", "/v1/nodes/3?confirm=yes&force=yes").get() == .remove(3, force: true))
        #expect(AdminRouter.route(uri: "/v1/nodes/3").map(\.methods) == .success(["GET", "HEAD", "DELETE"]))
    }

    @Test(arguments: [
        ("POST", "/v1/nodes", "{}", 400), ("POST", "/v1/nodes", #"{"id": 0}"#, 400),
        ("POST", "/v1/nodes", #"{"id": "4"}"#, 400), ("POST", "/v1/nodes", #"{"id": 4, "role": "x"}"#, 400),
        ("POST", "/v1/nodes", #"{"id": 2.5}"#, 400), ("DELETE", "/v1/nodes/3", "", 400),
        ("DELETE", "/v1/nodes/3?confirm=no", "", 400), ("GET", "/v1/nodes/0", "", 400), ("GET", "/v1/nodes/x", "", 400),
        ("GET", "/v1/nodes/3/frob", "", 404),
    ])
    func badRequestsAreRefused(method: String, uri: String, body: String, expected: Int) {
        guard case .failure(let failure) = change(method, uri, body) else {
            Issue.record("\(method) \(uri) \(body) accepted")
            return
        }
        #expect(failure.status == expected, "\(method) \(uri) \(body): \(failure)")
        #expect(!failure.hint.isEmpty)
    }

    /// A state that records the change and answers with a planned move count.
    struct NodeFake: AdminState {
        let planned: Int
        func health() -> HealthReport {
            HealthReport(
                nodeID: 1, peerAddress: "127.0.0.1:1", lease: "held", mayChangeContext: true,
                millisecondsSinceQuorumContact: 0, leaderID: 1, targets: [], lunCount: 0, version: "test")
        }
        func cluster() async throws -> ClusterStatus { throw AdminStateError("unused") }
        func luns() async throws -> [LUNStatus] { [] }
        func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? { nil }
        func targets() async throws -> [TargetStatus] { [] }
        func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus? { nil }
        func clearReservations(target: String, lun: UInt64, requestID: String?) async throws -> ReservationStatus? { nil }
        func sessions() async throws -> [SessionStatus] { [] }
        func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose? { nil }
        func nodes() async throws -> [NodeStatus] {
            [
                NodeStatus(
                    id: 3, state: "draining", liveness: "alive", fenced: false, iscsiPortals: [], replicas: 2,
                    primaries: 1, replicasNotInSync: 0, movesOff: 2, movesOn: 0,
                    drain: .init(requestedAt: 1, planned: 4, remaining: 2))
            ]
        }
        func apply(_ change: NodeChange, requestID: String?) async throws -> NodeChangeOutcome {
            if case .remove(let node, false) = change, node == 3 {
                throw AdminFailure(status: 409, error: "node 3 still holds 2 replicas", hint: "drain it first")
            }
            return NodeChangeOutcome(node: change.node, action: "drain", movesPlanned: planned, status: nil, message: "m")
        }
    }

    @Test func answersCarryTheStatusAndTheProgress() async throws {
        let state = NodeFake(planned: 2)
        let planned = await AdminRouter.respond(AdminRequest(method: "POST", uri: "/v1/nodes/3/drain"), state: state, token: nil)
        #expect(planned.status == 202, "moves run in the background")
        let none = await AdminRouter.respond(
            AdminRequest(method: "POST", uri: "/v1/nodes/3/drain"), state: NodeFake(planned: 0), token: nil)
        #expect(none.status == 200)
        let one = await AdminRouter.respond(AdminRequest(method: "GET", uri: "/v1/nodes/3"), state: state, token: nil)
        #expect(one.status == 200 && one.body.contains(#""percent" : 50"#))
        let missing = await AdminRouter.respond(AdminRequest(method: "GET", uri: "/v1/nodes/9"), state: state, token: nil)
        #expect(missing.status == 404)
        let refused = await AdminRouter.respond(
            AdminRequest(method: "DELETE", uri: "/v1/nodes/3?confirm=yes"), state: state, token: nil)
        #expect(refused.status == 409 && refused.body.contains("drain it first"))
        let token = AdminToken("secret-token-0123456789")!
        let anonymous = await AdminRouter.respond(AdminRequest(method: "GET", uri: "/v1/nodes"), state: state, token: token)
        #expect(anonymous.status == 401)
    }
}
