import AdminAPI
import Foundation

/// A failure `tessera` reports: the message says what to do next; the
/// command exits with `status` (1 for a failure, 2 for usage).
public struct CLIFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// What to print on stderr.
    public var message: String
    /// The exit status.
    public var status: Int32

    public init(_ message: String, status: Int32 = 1) {
        self.message = message
        self.status = status
    }

    public var description: String { message }
}

/// GETs a resource from the first node that answers, in the order given.
/// A node that does not answer, or answers 503 (it cannot read the store
/// now), is passed over for the next one; any other answer is final.
public struct AdminClient: Sendable {
    /// The nodes to try, in order.
    public var nodes: [NodeEndpoint]
    /// The bearer token, if any.
    var token: String?
    /// How the requests travel.
    var transport: any AdminTransport
    /// How long one node has to answer.
    var timeout: Duration
    /// Where `--verbose` notes go (stderr in the command).
    var note: @Sendable (String) -> Void

    public init(
        nodes: [NodeEndpoint], token: String?, transport: any AdminTransport, timeout: Duration = .seconds(5),
        note: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.nodes = nodes
        self.token = token
        self.transport = transport
        self.timeout = timeout
        self.note = note
    }

    /// The body of `path` from the first node that answers it, and that node.
    public func get(_ path: String) async throws(CLIFailure) -> (body: [UInt8], node: NodeEndpoint) {
        try await request("GET", path)
    }

    /// Sends a change to the first node that answers it. Every attempt
    /// carries the same `Idempotency-Key`, so when a node took the change but
    /// its answer was lost, the next node's attempt changes nothing again.
    public func send(_ method: String, _ path: String, body: [UInt8], requestID: String) async throws(CLIFailure)
        -> (body: [UInt8], node: NodeEndpoint)
    {
        try await request(method, path, body: body, extraHeaders: [("Idempotency-Key", requestID)])
    }

    /// `send` decoded as `T`.
    public func send<T: Decodable>(
        _ method: String, _ path: String, body: [UInt8], requestID: String, as type: T.Type
    ) async throws(CLIFailure) -> (value: T, raw: [UInt8], node: NodeEndpoint) {
        let (raw, node) = try await send(method, path, body: body, requestID: requestID)
        return (try decode(T.self, raw, path: path, node: node), raw, node)
    }

    private func request(
        _ method: String, _ path: String, body: [UInt8] = [], extraHeaders: [(String, String)] = []
    ) async throws(CLIFailure) -> (body: [UInt8], node: NodeEndpoint) {
        var problems: [String] = []
        let headers = (token.map { [("Authorization", "Bearer \($0)")] } ?? []) + extraHeaders
        for node in nodes {
            let answer: HTTPAnswer
            do {
                answer = try await transport.send(
                    node, method: method, path: path, headers: headers, body: body, timeout: timeout)
            } catch {
                note("\(node) did not answer: \(error)")
                problems.append("\(node) (\(error))")
                continue
            }
            switch answer.status {
            case 200..<300:
                note("answered by \(node)")
                return (answer.body, node)
            case 503:
                let reason = Self.errorBody(answer)?.error ?? "unavailable"
                note("\(node) answered 503: \(reason)")
                problems.append("\(node) (\(reason))")
                continue
            case 401:
                let body = Self.errorBody(answer)
                throw CLIFailure(
                    "\(node) refused the request: \(body?.error ?? "unauthorized"); "
                        + "pass the node's admin token with --token-file PATH or TESSERA_TOKEN")
            default:
                let body = Self.errorBody(answer)
                let text = body.map { "\($0.error); \($0.hint)" } ?? "HTTP \(answer.status): \(answer.text.prefix(200))"
                throw CLIFailure("\(node): \(text)")
            }
        }
        throw CLIFailure(
            "no node answered: tried \(problems.joined(separator: ", ")); start a node or pass --node HOST:PORT "
                + "(or TESSERA_NODE=HOST:PORT,HOST:PORT)")
    }

    /// `path` decoded as `T`, the body as it came, and the node that answered.
    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws(CLIFailure) -> (
        value: T, raw: [UInt8], node: NodeEndpoint
    ) {
        let (body, node) = try await get(path)
        return (try decode(T.self, body, path: path, node: node), body, node)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], path: String, node: NodeEndpoint)
        throws(CLIFailure) -> T
    {
        do {
            return try AdminJSON.decoder.decode(T.self, from: Data(body))
        } catch {
            throw CLIFailure(
                "\(node) answered \(path) with JSON this tessera does not understand (\(error)); "
                    + "is the node the same version as tessera \(TesseraCommand.version)?")
        }
    }

    static func errorBody(_ answer: HTTPAnswer) -> AdminErrorBody? {
        try? AdminJSON.decoder.decode(AdminErrorBody.self, from: Data(answer.body))
    }
}
