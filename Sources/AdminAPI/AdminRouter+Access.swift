extension AdminRouter {
    /// The change a request to an access route asks for, validated: the
    /// body parsed, the initiator name checked and normalized, the CHAP
    /// credentials checked; with its request id, if it has one. Pure.
    public static func accessChange(_ request: AdminRequest, route: AdminRoute) -> Result<
        (change: AccessChange, requestID: String?), AdminFailure
    > {
        let object: [String: Any]
        let requestID: String?
        switch AccessValidation.body(request) {
        case .success(let found): (object, requestID) = found
        case .failure(let failure): return .failure(failure)
        }
        func checked(_ raw: String, _ make: (String) -> Result<AccessChange, AdminFailure>) -> Result<
            (change: AccessChange, requestID: String?), AdminFailure
        > {
            AccessValidation.initiator(raw).flatMap(make).map { ($0, requestID) }
        }
        switch (route, request.method) {
        case (.acls(let target), _):
            let known: Set = ["initiator", "request_id"]
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                return .failure(
                    AdminFailure(
                        status: 400, error: "unknown field \(printable(unknown))",
                        hint: "the body is {\"initiator\": \"iqn....\"}"))
            }
            guard let initiator = object["initiator"] as? String else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "initiator is required (a JSON string)",
                        hint: "send {\"initiator\": \"iqn.2004-10.com.example:host1\"}"))
            }
            return checked(initiator) { .success(.allow(target: target, initiator: $0)) }
        case (.acl(let target, let initiator), _):
            return checked(initiator) { .success(.revoke(target: target, initiator: $0)) }
        case (.chap(let target, let initiator), "PUT"):
            return checked(initiator) { name in
                AccessValidation.chap(object).map { .setCHAP(target: target, initiator: name, $0) }
            }
        case (.chap(let target, let initiator), _):
            return checked(initiator) { .success(.removeCHAP(target: target, initiator: $0)) }
        case (.lunMask(let target, let lun, let initiator?), "PUT"):
            return checked(initiator) { .success(.mask(target: target, lun: lun, initiator: $0)) }
        case (.lunMask(let target, let lun, let initiator?), _):
            return checked(initiator) { .success(.unmask(target: target, lun: lun, initiator: $0)) }
        case (.lunMask(let target, let lun, nil), _):
            return .success((.clearMask(target: target, lun: lun), requestID))
        default:
            return .failure(AdminFailure(status: 404, error: "not an access route", hint: "see GET /v1/targets"))
        }
    }

    /// Validates and applies a change; answers with the target as it is now.
    static func change(_ request: AdminRequest, route: AdminRoute, state: any AdminState) async throws
        -> AdminResponse
    {
        switch accessChange(request, route: route) {
        case .failure(let failure):
            return failure.response
        case .success(let (change, requestID)):
            guard let target = try await state.apply(change, requestID: requestID) else {
                return AdminFailure(
                    status: 404, error: "no target \(printable(change.target))",
                    hint: "GET /v1/targets (tessera target list) lists the targets"
                ).response
            }
            return AdminResponse(
                status: 200, reason: "OK", contentType: "application/json", body: AdminJSON.encode(target))
        }
    }
}

extension AdminState {
    /// A node that takes no changes answers 503.
    public func apply(_ change: AccessChange, requestID: String?) async throws -> TargetStatus? {
        throw AdminStateError("this node does not take changes")
    }

    /// A state without an iSCSI server has no sessions.
    public func sessions() async throws -> [SessionStatus] { [] }

    /// A state without an iSCSI server has no session to close.
    public func closeSession(node: UInt64, tsih: UInt16) async throws -> SessionClose? { nil }

    /// A node that takes no changes answers 503.
    public func clearReservations(target: String, lun: UInt64, requestID: String?) async throws -> ReservationStatus? {
        throw AdminStateError("this node does not take changes")
    }
}
