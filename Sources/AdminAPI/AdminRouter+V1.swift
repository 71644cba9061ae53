import Foundation

/// One HTTP request as the router sees it.
public struct AdminRequest: Hashable, Sendable {
    /// The method ("GET", "HEAD", …).
    public var method: String
    /// The request target: path and query.
    public var uri: String
    /// The `Authorization` header, if any.
    public var authorization: String?
    /// The `Idempotency-Key` header, if any.
    public var idempotencyKey: String?
    /// The body (JSON for the changes; empty for a GET).
    public var body: [UInt8]

    public init(
        method: String, uri: String, authorization: String? = nil, idempotencyKey: String? = nil, body: [UInt8] = []
    ) {
        self.method = method
        self.uri = uri
        self.authorization = authorization
        self.idempotencyKey = idempotencyKey
        self.body = body
    }
}

/// Which LUN a request names: its number, and its target when given.
public struct LUNSelector: Hashable, Sendable {
    /// `?target=`: the target's iSCSI name; nil matches any target.
    public var target: String?
    /// The LUN number.
    public var lun: UInt64

    public init(target: String? = nil, lun: UInt64) {
        self.target = target
        self.lun = lun
    }
}

/// What a request path names.
public enum AdminRoute: Hashable, Sendable {
    /// `GET /health`: no token needed.
    case health
    /// `GET /metrics`: no token needed.
    case metrics
    /// `GET /v1/cluster`.
    case cluster
    /// `GET /v1/luns`; `POST` creates one.
    case luns
    /// `GET /v1/luns/{id}`; `PATCH` resizes it (a shrink with `?force=yes`), `DELETE ?confirm=yes` deletes it.
    case lun(LUNSelector)
    /// `GET /v1/luns/{id}/reservations`; `DELETE` clears them (an
    /// administrator's PERSISTENT RESERVE OUT CLEAR).
    case reservations(LUNSelector)
    /// `GET /v1/targets`; `POST` creates one.
    case targets
    /// `GET /v1/targets/{iqn}`; `PATCH` changes its alias or portal group
    /// tag; `DELETE` deletes it (only without LUNs).
    case target(String)
    /// `POST /v1/targets/{iqn}/acls`: adds an initiator to the ACL.
    case acls(target: String)
    /// `DELETE /v1/targets/{iqn}/acls/{initiator}`: removes it.
    case acl(target: String, initiator: String)
    /// `PUT` / `DELETE /v1/targets/{iqn}/chap/{initiator}`: one initiator's CHAP.
    case chap(target: String, initiator: String)
    /// `PUT` / `DELETE /v1/targets/{iqn}/luns/{n}/initiators/{initiator}`:
    /// one initiator in or out of a LUN's mask; without the initiator,
    /// `DELETE` removes the whole mask.
    case lunMask(target: String, lun: UInt16, initiator: String?)
    /// `GET /v1/sessions`: every live session of the cluster.
    case sessions
    /// `GET` / `DELETE /v1/sessions/{node}/{tsih}`: one session; DELETE closes it.
    case session(node: UInt64, tsih: UInt16)
    /// `GET /v1/nodes`; `POST` with `{"id": N}` gives a joined node its share of the replicas.
    case nodes
    /// `GET /v1/nodes/{id}`; `DELETE ?confirm=yes[&force=yes]` removes it from the cluster.
    case node(UInt64)
    /// `POST /v1/nodes/{id}/drain` drains it; `DELETE` ends the drain.
    case nodeDrain(UInt64)

    /// Whether the route needs the token (when one is configured).
    public var isProtected: Bool {
        switch self {
        case .health, .metrics: false
        default: true
        }
    }

    /// The methods the route answers.
    public var methods: [String] {
        switch self {
        case .acls: ["POST"]
        case .acl: ["DELETE"]
        case .chap: ["PUT", "DELETE"]
        case .lunMask(_, _, let initiator): initiator == nil ? ["DELETE"] : ["PUT", "DELETE"]
        case .reservations, .session: ["GET", "HEAD", "DELETE"]
        case .target: ["GET", "HEAD", "PATCH", "DELETE"]
        case .luns, .targets, .nodes: ["GET", "HEAD", "POST"]
        case .node: ["GET", "HEAD", "DELETE"]
        case .nodeDrain: ["POST", "DELETE"]
        case .lun: ["GET", "HEAD", "PATCH", "DELETE"]
        default: ["GET", "HEAD"]
        }
    }
}

extension AdminRouter {
    /// The methods every route answers.
    static let allowedMethods = ["GET", "HEAD"]

    /// The largest LUN number (SAM-5 flat space addressing: 14 bits).
    public static let maximumLUN: UInt64 = 16383

    /// What a path names, or the error answer for a path that names nothing
    /// (404) or a LUN id that is not one (400). Pure: no state, no token.
    public static func route(uri: String) -> Result<AdminRoute, AdminFailure> {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? uri
        let query = parts.count > 1 ? parseQuery(String(parts[1])) : [:]
        let segments = path.split(separator: "/").map(String.init)
        switch segments {
        case ["health"]: return .success(.health)
        case ["metrics"]: return .success(.metrics)
        case ["v1", "cluster"]: return .success(.cluster)
        case ["v1", "luns"]: return .success(.luns)
        case ["v1", "targets"]: return .success(.targets)
        case ["v1", "sessions"]: return .success(.sessions)
        case ["v1", "nodes"]: return .success(.nodes)
        case _ where (3...4).contains(segments.count) && segments[0] == "v1" && segments[1] == "nodes":
            guard let node = UInt64(segments[2]), node > 0 else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "\(printable(segments[2])) is not a node id",
                        hint: "node ids are whole numbers from 1; GET /v1/nodes (tessera node list) lists them"))
            }
            if segments.count == 3 { return .success(.node(node)) }
            if segments[3] == "drain" { return .success(.nodeDrain(node)) }
        case _ where segments.count == 4 && segments[0] == "v1" && segments[1] == "sessions":
            return sessionRoute(node: segments[2], tsih: segments[3])
        case _
        where (6...7).contains(segments.count) && segments[0] == "v1" && segments[1] == "targets"
            && segments[3] == "luns" && segments[5] == "initiators":
            guard let target = segments[2].removingPercentEncoding, !target.isEmpty else { break }
            guard let lun = UInt16(segments[4]), UInt64(lun) <= maximumLUN else {
                return .failure(
                    AdminFailure(
                        status: 400, error: "\(printable(segments[4])) is not a LUN id",
                        hint: "use the LUN number, 0...\(maximumLUN); GET /v1/targets lists each target's LUNs"))
            }
            let initiator = segments.count == 7 ? segments[6].removingPercentEncoding : nil
            if segments.count == 7 && initiator == nil { break }
            return .success(.lunMask(target: target, lun: lun, initiator: initiator))
        case _ where segments.count == 3 && segments[0] == "v1" && segments[1] == "targets":
            guard let target = segments[2].removingPercentEncoding, !target.isEmpty else { break }
            return .success(.target(target))
        case _ where segments.count >= 4 && segments[0] == "v1" && segments[1] == "targets":
            guard let target = segments[2].removingPercentEncoding, !target.isEmpty else { break }
            let initiator = segments.count == 5 ? segments[4].removingPercentEncoding : nil
            switch (segments[3], segments.count, initiator) {
            case ("acls", 4, _): return .success(.acls(target: target))
            case ("acls", 5, let initiator?): return .success(.acl(target: target, initiator: initiator))
            case ("chap", 5, let initiator?): return .success(.chap(target: target, initiator: initiator))
            default: break
            }
        case _ where segments.count == 3 && segments[0] == "v1" && segments[1] == "luns":
            return selector(segments[2], query: query).map(AdminRoute.lun)
        case _
        where segments.count == 4 && segments[0] == "v1" && segments[1] == "luns" && segments[3] == "reservations":
            return selector(segments[2], query: query).map(AdminRoute.reservations)
        default:
            break
        }
        return .failure(
            AdminFailure(
                status: 404, error: "no resource at \(printable(path))",
                hint: "the API has /health, /metrics, /v1/cluster, /v1/luns, /v1/luns/{id}, "
                    + "/v1/luns/{id}/reservations, /v1/targets, /v1/targets/{iqn}, /v1/targets/{iqn}/acls[/{initiator}], "
                    + "/v1/targets/{iqn}/chap/{initiator}, /v1/targets/{iqn}/luns/{n}/initiators[/{initiator}], "
                    + "/v1/sessions, /v1/sessions/{node}/{tsih}, /v1/nodes, /v1/nodes/{id} and /v1/nodes/{id}/drain"))
    }

    /// Answers a request: 404 for an unknown path, 401 without the right
    /// token on a protected route (when `token` is set), 405 for a method
    /// other than GET/HEAD (with `Allow`), 400 for a bad LUN id, 503 when the
    /// state cannot be read; else the resource as JSON. `/health` and
    /// `/metrics` answer as ``respond(method:uri:report:)`` does.
    public static func respond(_ request: AdminRequest, state: any AdminState, token: AdminToken?) async
        -> AdminResponse
    {
        let route: AdminRoute
        switch self.route(uri: request.uri) {
        case .success(let found): route = found
        case .failure(let failure):
            // An unknown path says only that it is unknown, token or not.
            if failure.status == 404 { return failure.response }
            // A bad id on a protected path: the token is checked first.
            if let token, !token.accepts(authorization: request.authorization) { return unauthorized(request) }
            guard allowedMethods.contains(request.method) else { return methodNotAllowed(request.method) }
            return failure.response
        }
        if route.isProtected, let token, !token.accepts(authorization: request.authorization) {
            return unauthorized(request)
        }
        guard route.methods.contains(request.method) else { return methodNotAllowed(request.method, route: route) }
        do {
            switch route {
            case .health, .metrics:
                return respond(method: request.method, uri: request.uri, report: state.health, io: state.ioStatistics)
            case .cluster:
                return ok(try await state.cluster())
            case .luns where request.method == "POST", .targets where request.method == "POST",
                .lun where request.method == "PATCH" || request.method == "DELETE",
                .target where request.method == "PATCH" || request.method == "DELETE":
                return try await catalogChange(request, route: route, state: state)
            case .luns:
                return ok(try await state.luns())
            case .targets:
                return ok(try await state.targets())
            case .target(let name):
                let lowered = name.lowercased()
                guard let target = try await state.targets().first(where: { $0.name.lowercased() == lowered }) else {
                    return AdminFailure(
                        status: 404, error: "no target \(printable(name))",
                        hint: "GET /v1/targets (tessera target list) lists the targets"
                    ).response
                }
                return ok(target)
            case .lun(let selector):
                switch pick(selector, from: try await state.luns()) {
                case .success(let lun): return ok(lun)
                case .failure(let failure): return failure.response
                }
            case .acls, .acl, .chap, .lunMask:
                return try await change(request, route: route, state: state)
            case .nodes where request.method == "POST", .node where request.method == "DELETE", .nodeDrain:
                return try await nodeChange(request, route: route, state: state)
            case .nodes:
                return ok(try await state.nodes())
            case .node(let id):
                guard let node = try await state.nodes().first(where: { $0.id == id }) else {
                    return AdminFailure(
                        status: 404, error: "no member \(id)", hint: "GET /v1/nodes (tessera node list) lists the members"
                    ).response
                }
                return ok(node)
            case .sessions:
                return ok(try await state.sessions())
            case .session(let node, let tsih):
                if request.method == "DELETE" {
                    guard let closed = try await state.closeSession(node: node, tsih: tsih) else {
                        return noSession(node: node, tsih: tsih)
                    }
                    var response = ok(closed)
                    if closed.outcome == "requested" {
                        response.status = 202
                        response.reason = AdminFailure.reason(202)
                    }
                    return response
                }
                guard let session = try await state.sessions().first(where: { $0.node == node && $0.tsih == tsih })
                else { return noSession(node: node, tsih: tsih) }
                return ok(session)
            case .reservations(let selector):
                switch pick(selector, from: try await state.luns()) {
                case .failure(let failure): return failure.response
                case .success(let lun):
                    if request.method == "DELETE" {
                        let requestID: String?
                        switch AccessValidation.requestID(header: request.idempotencyKey, field: nil) {
                        case .success(let found): requestID = found
                        case .failure(let failure): return failure.response
                        }
                        guard
                            let cleared = try await state.clearReservations(
                                target: lun.target, lun: lun.lun, requestID: requestID)
                        else { return notFound(selector) }
                        return ok(cleared)
                    }
                    guard let reservations = try await state.reservations(target: lun.target, lun: lun.lun) else {
                        return notFound(selector)
                    }
                    return ok(reservations)
                }
            }
        } catch let failure as AdminFailure {
            return failure.response
        } catch {
            return AdminFailure(
                status: 503, error: "this node cannot read the cluster state now: \(error)",
                hint: "the store may be electing a leader or have lost its quorum; retry in a few seconds, "
                    + "or ask another node (tessera --node HOST:PORT)"
            ).response
        }
    }

    /// The one LUN `selector` names among `luns`: 404 when none, 400 when
    /// the number is the same in several targets and no target was given.
    public static func pick(_ selector: LUNSelector, from luns: [LUNStatus]) -> Result<LUNStatus, AdminFailure> {
        let matches = luns.filter { $0.lun == selector.lun && (selector.target == nil || $0.target == selector.target) }
        if matches.count == 1, let only = matches.first { return .success(only) }
        if matches.isEmpty { return .failure(notFoundFailure(selector)) }
        return .failure(
            AdminFailure(
                status: 400,
                error: "LUN \(selector.lun) exists in \(matches.count) targets: "
                    + matches.map(\.target).joined(separator: ", "),
                hint:
                    "name the target: /v1/luns/\(selector.lun)?target=IQN (tessera lun show \(selector.lun) --target IQN)"
            ))
    }

    private static func notFoundFailure(_ selector: LUNSelector) -> AdminFailure {
        AdminFailure(
            status: 404,
            error: "no LUN \(selector.lun)" + (selector.target.map { " in target \(printable($0))" } ?? ""),
            hint: "GET /v1/luns (tessera lun list) lists the LUNs")
    }

    private static func notFound(_ selector: LUNSelector) -> AdminResponse { notFoundFailure(selector).response }

    private static func noSession(node: UInt64, tsih: UInt16) -> AdminResponse {
        AdminFailure(
            status: 404, error: "no session \(tsih) on node \(node)",
            hint: "GET /v1/sessions (tessera session list) lists the sessions; a session that just ended is gone"
        ).response
    }

    /// `/v1/sessions/{node}/{tsih}`: a node id from 1, a TSIH 1...65535
    /// (decimal, or hex with 0x as the kernel prints it).
    static func sessionRoute(node: String, tsih: String) -> Result<AdminRoute, AdminFailure> {
        guard let nodeID = UInt64(node), nodeID > 0 else {
            return .failure(
                AdminFailure(
                    status: 400, error: "\(printable(node)) is not a node id",
                    hint: "use the node's number from tessera cluster status, e.g. /v1/sessions/2/5"))
        }
        let lowered = tsih.lowercased()
        let parsed = lowered.hasPrefix("0x") ? UInt16(lowered.dropFirst(2), radix: 16) : UInt16(lowered)
        // RFC 7143 §11.12.6: TSIH 0 is reserved for a login that creates a session.
        guard let value = parsed, value > 0 else {
            return .failure(
                AdminFailure(
                    status: 400, error: "\(printable(tsih)) is not a TSIH",
                    hint: "use the session's TSIH, 1...65535, from GET /v1/sessions (tessera session list)"))
        }
        return .success(.session(node: nodeID, tsih: value))
    }

    private static func selector(_ id: String, query: [String: String]) -> Result<LUNSelector, AdminFailure> {
        guard let lun = UInt64(id), lun <= maximumLUN else {
            return .failure(
                AdminFailure(
                    status: 400, error: "\(printable(id)) is not a LUN id",
                    hint: "use the LUN number, 0...\(maximumLUN), e.g. /v1/luns/0; GET /v1/luns lists them"))
        }
        if let target = query["target"], target.isEmpty {
            return .failure(
                AdminFailure(
                    status: 400, error: "empty ?target=", hint: "give the target's iSCSI name, or leave it out"))
        }
        return .success(LUNSelector(target: query["target"], lun: lun))
    }

    static func ok(_ value: some Encodable) -> AdminResponse {
        AdminResponse(status: 200, reason: "OK", contentType: "application/json", body: AdminJSON.encode(value))
    }

    private static func unauthorized(_ request: AdminRequest) -> AdminResponse {
        var response = AdminFailure(
            status: 401,
            error: request.authorization == nil ? "this request needs the admin token" : "the admin token is wrong",
            hint: "send Authorization: Bearer <token> with the token from the node's [admin] token_file "
                + "(tessera --token-file PATH, or TESSERA_TOKEN)"
        ).response
        response.headers["WWW-Authenticate"] = "Bearer realm=\"tessera\""
        return response
    }

    private static func methodNotAllowed(_ method: String, route: AdminRoute? = nil) -> AdminResponse {
        let methods = route?.methods ?? allowedMethods
        var response = AdminFailure(
            status: 405, error: "\(printable(method)) is not allowed here",
            hint: "this resource answers " + methods.joined(separator: ", ")
        ).response
        response.headers["Allow"] = methods.joined(separator: ", ")
        return response
    }

    /// `a=1&b=x%20y` → ["a": "1", "b": "x y"]; a pair that does not decode is left out.
    static func parseQuery(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = String(kv[0]).removingPercentEncoding else { continue }
            let raw = kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ") : ""
            guard let value = raw.removingPercentEncoding else { continue }
            result[key] = value
        }
        return result
    }

    /// A request's text quoted for an error message: at most 100 characters, control characters escaped.
    public static func printable(_ text: String) -> String {
        let clipped = text.count > 100 ? String(text.prefix(100)) + "…" : text
        return JSON.string(clipped)
    }
}

/// An error answer: status, what went wrong, what to do next.
public struct AdminFailure: Error, Hashable, Sendable {
    /// HTTP status.
    public var status: Int
    /// What went wrong.
    public var error: String
    /// What to do next.
    public var hint: String

    public init(status: Int, error: String, hint: String) {
        self.status = status
        self.error = error
        self.hint = hint
    }

    /// The answer: the status and `{"error": …, "hint": …}`.
    public var response: AdminResponse {
        AdminResponse(
            status: status, reason: AdminFailure.reason(status), contentType: "application/json",
            body: AdminJSON.encode(AdminErrorBody(error: error, hint: hint)))
    }

    /// The reason phrase of the statuses the API uses (RFC 9110 §15).
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }
}
