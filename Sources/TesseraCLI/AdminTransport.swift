import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One node's answer to a GET.
public struct HTTPAnswer: Hashable, Sendable {
    /// Status code.
    public var status: Int
    /// Body bytes.
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    /// The body as text.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// How `tessera` reaches a node's admin API: a GET, answered or thrown. The
/// CLI's tests use a fake; the command uses ``NIOAdminTransport``.
public protocol AdminTransport: Sendable {
    /// GETs `path` from `endpoint` with `headers`. Throws when the node does
    /// not answer (refused, unreachable, timed out, closed early).
    func get(_ endpoint: NodeEndpoint, path: String, headers: [(String, String)], timeout: Duration) async throws
        -> HTTPAnswer
    /// Sends `method` with a JSON `body` to `path` on `endpoint`; throws as ``get(_:path:headers:timeout:)``.
    func send(
        _ endpoint: NodeEndpoint, method: String, path: String, headers: [(String, String)], body: [UInt8],
        timeout: Duration
    ) async throws -> HTTPAnswer
}

extension AdminTransport {
    /// A transport that only reads: a GET goes through ``get(_:path:headers:timeout:)``, anything else fails.
    public func send(
        _ endpoint: NodeEndpoint, method: String, path: String, headers: [(String, String)], body: [UInt8],
        timeout: Duration
    ) async throws -> HTTPAnswer {
        guard method == "GET" else { throw TransportError(description: "this transport only reads") }
        return try await get(endpoint, path: path, headers: headers, timeout: timeout)
    }
}

/// A node's admin address.
public struct NodeEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// Host name or address (IPv6 without brackets).
    public var host: String
    /// Port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[V6]:PORT`; nil for anything else.
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else { return nil }
        self.host = String(host)
        self.port = number
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The transport over SwiftNIO's HTTP/1.1 client handlers, already in the
/// package for the server side (URLSession would pull FoundationNetworking
/// and libcurl into `tessera` for one GET).
public struct NIOAdminTransport: AdminTransport {
    /// The largest body accepted (a cluster's whole sub-unit map fits many times).
    static let maximumBody = 64 << 20

    public init() {}

    public func get(_ endpoint: NodeEndpoint, path: String, headers: [(String, String)], timeout: Duration)
        async throws -> HTTPAnswer
    {
        try await send(endpoint, method: "GET", path: path, headers: headers, body: [], timeout: timeout)
    }

    public func send(
        _ endpoint: NodeEndpoint, method: String, path: String, headers: [(String, String)], body: [UInt8],
        timeout: Duration
    ) async throws -> HTTPAnswer {
        let group = MultiThreadedEventLoopGroup.singleton
        let milliseconds = Int64(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(milliseconds))
                .channelInitializer { channel in
                    channel.pipeline.addHTTPClientHandlers()
                }
                .connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw TransportError(description: Self.describe(error, timeout: timeout))
        }
        let promise = channel.eventLoop.makePromise(of: HTTPAnswer.self)
        let collector = ResponseCollector(promise: promise, limit: Self.maximumBody)
        do {
            try await channel.pipeline.addHandler(collector).get()
        } catch {
            promise.fail(error)
            channel.close(promise: nil)
            throw TransportError(description: "\(error)")
        }
        let deadline = channel.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
            promise.fail(TransportError(description: "no answer within \(timeout)"))
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: endpoint.description)
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "Connection", value: "close")
        if method != "GET" {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.count)")
        }
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty {
            var buffer = channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }
}

extension NIOAdminTransport {
    /// A connection failure in a few words: "connection refused", "no connection within 5 seconds".
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let failure = error as? NIOConnectionError {
            if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "cannot resolve the host name (\(dns))" }
            if let first = failure.connectionErrors.first { return describe(first.error, timeout: timeout) }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if case .connectTimeout = error as? ChannelError { return "no connection within \(timeout)" }
        return "\(error)"
    }
}

/// The transport could not get an answer.
struct TransportError: Error, CustomStringConvertible {
    var description: String
}

/// Collects one response; fails the promise when the connection ends first.
/// Used on its channel's event loop only (hence `@unchecked Sendable`).
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPAnswer>
    private let limit: Int
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<HTTPAnswer>, limit: Int) {
        self.promise = promise
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= limit else {
                promise.fail(TransportError(description: "answer larger than \(limit) bytes"))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            promise.succeed(HTTPAnswer(status: status, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(TransportError(description: "the connection closed before the answer was complete"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
