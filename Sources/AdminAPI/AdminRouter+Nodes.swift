extension AdminRouter {
    /// The member change a request asks for, validated, with its request id.
    /// Removing a node needs `?confirm=yes` (it leaves the cluster for good;
    /// its id cannot join again); `&force=yes` removes one that still holds
    /// replicas because it is down for good. Pure.
    public static func nodeChange(_ request: AdminRequest, route: AdminRoute) -> Result<
        (change: NodeChange, requestID: String?), AdminFailure
    > {
        let object: [String: Any]
        let requestID: String?
        switch AccessValidation.body(request) {
        case .success(let found): (object, requestID) = found
        case .failure(let failure): return .failure(failure)
        }
        let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map { parseQuery(String($0)) } ?? [:]
        func yes(_ name: String) -> Bool { query[name].map { ["yes", "true", "1"].contains($0.lowercased()) } ?? false }
        switch (route, request.method) {
        case (.nodes, "POST"):
            if let unknown = CatalogValidation.unknownField(object, known: ["id", "request_id"], hint: "send {\"id\": N}") {
                return .failure(unknown)
            }
            guard let value = object["id"], let id = CatalogValidation.integer(value).flatMap(UInt64.init(exactly:)),
                id > 0
            else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "id must be the node id of a member that joined, a whole number from 1",
                        hint: "start tesserad on the new node with cluster.join naming a member, then "
                            + "POST /v1/nodes {\"id\": N} (tessera node add N)"))
            }
            return .success((.add(id), requestID))
        case (.nodeDrain(let id), "POST"): return .success((.drain(id), requestID))
        case (.nodeDrain(let id), "DELETE"): return .success((.undrain(id), requestID))
        case (.node(let id), "DELETE"):
            guard yes("confirm") else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "removing node \(id) takes it out of the cluster for good; it needs ?confirm=yes",
                        hint: "drain it first (tessera node drain \(id) --wait), then DELETE /v1/nodes/\(id)?confirm=yes "
                            + "(tessera node remove \(id) --yes)"))
            }
            return .success((.remove(id, force: yes("force")), requestID))
        default:
            return .failure(AdminFailure(status: 404, error: "not a node route", hint: "see GET /v1/nodes"))
        }
    }

    /// Validates and applies a member change; answers 202 when moves were
    /// planned (they run in the background), 200 otherwise.
    static func nodeChange(_ request: AdminRequest, route: AdminRoute, state: any AdminState) async throws -> AdminResponse {
        switch nodeChange(request, route: route) {
        case .failure(let failure):
            return failure.response
        case .success(let (change, requestID)):
            let outcome = try await state.apply(change, requestID: requestID)
            var response = ok(outcome)
            if outcome.movesPlanned > 0 {
                response.status = 202
                response.reason = AdminFailure.reason(202)
            }
            return response
        }
    }
}
