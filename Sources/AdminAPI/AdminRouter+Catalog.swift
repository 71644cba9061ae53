extension AdminRouter {
    /// The catalog change a request asks for, validated, with its request
    /// id. A LUN's `DELETE` needs `?confirm=yes`: it destroys the LUN's data
    /// on every node; a `PATCH` to a smaller size needs `?force=yes` (or
    /// `"force": true`) for the same reason. Pure.
    public static func catalogChange(_ request: AdminRequest, route: AdminRoute) -> Result<
        (change: CatalogChange, requestID: String?), AdminFailure
    > {
        let object: [String: Any]
        let requestID: String?
        switch AccessValidation.body(request) {
        case .success(let found): (object, requestID) = found
        case .failure(let failure): return .failure(failure)
        }
        let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map { parseQuery(String($0)) } ?? [:]
        let change: Result<CatalogChange, AdminFailure>
        switch (route, request.method) {
        case (.targets, "POST"): change = CatalogValidation.target(object)
        case (.luns, "POST"): change = CatalogValidation.lun(object)
        case (.lun(let selector), "PATCH"):
            change = CatalogValidation.resize(object, selector: selector, forceQuery: query["force"])
        case (.lun(let selector), "DELETE"):
            guard let confirm = query["confirm"], ["yes", "true", "1"].contains(confirm.lowercased()) else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "deleting LUN \(selector.lun) destroys its data on every node; it needs ?confirm=yes",
                        hint: "DELETE /v1/luns/\(selector.lun)?confirm=yes (tessera lun delete \(selector.lun) --yes)"))
            }
            change = .success(.deleteLUN(selector))
        case (.target(let name), "DELETE"): change = .success(.deleteTarget(name: name))
        case (.target(let name), "PATCH"): change = CatalogValidation.updateTarget(object, name: name)
        default:
            return .failure(AdminFailure(status: 404, error: "not a catalog route", hint: "see GET /v1/targets"))
        }
        return change.map { ($0, requestID) }
    }

    /// Validates and applies a catalog change; answers 201 with what was
    /// created, 200 with a resized LUN or with what was deleted.
    static func catalogChange(_ request: AdminRequest, route: AdminRoute, state: any AdminState) async throws
        -> AdminResponse
    {
        switch catalogChange(request, route: route) {
        case .failure(let failure):
            return failure.response
        case .success(let (change, requestID)):
            var response: AdminResponse
            switch try await state.apply(change, requestID: requestID) {
            case .target(let target): response = ok(target)
            case .lun(let lun): response = ok(lun)
            case .deleted(let deleted): response = ok(deleted)
            }
            switch change {
            case .createTarget, .createLUN:
                response.status = 201
                response.reason = AdminFailure.reason(201)
            default: break
            }
            return response
        }
    }
}

extension AdminState {
    /// A node that takes no changes answers 503.
    public func apply(_ change: CatalogChange, requestID: String?) async throws -> CatalogOutcome {
        throw AdminStateError("this node does not take changes")
    }
}
