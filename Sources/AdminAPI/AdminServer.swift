import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin HTTP endpoint on NIOHTTP1: `GET /health`, `GET /metrics` and
/// the `/v1/...` resources. One request per connection; the thin handler
/// asks ``AdminRouter`` and writes its answer. The token is held here and
/// in the router only: nothing logs it.
public final class AdminServer: Sendable {
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state: any AdminState
    private let token: AdminToken?
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    /// `token`: the bearer token protected routes need; nil serves them to anyone
    /// (the configuration allows that only on a loopback address).
    public init(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        token: AdminToken?, state: any AdminState
    ) {
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
        self.token = token
        self.state = state
    }

    /// Binds and starts serving.
    public func start() async throws {
        let state = self.state
        let token = self.token
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client that closes its sending side after the request (busybox
            // `nc`, `curl --http1.0` with a body from stdin) still gets the
            // answer: the router's answer comes from a task, after the EOF.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHTTPHandler(state: state, token: token))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLockedValue { $0 = bound }
        logger.info(
            "admin endpoint listening",
            metadata: ["address": "\(host):\(port)", "token": "\(token == nil ? "none (loopback)" : "required")"])
    }

    /// The port it listens on once started (the one the system chose for port 0).
    public var boundPort: Int? { channel.withLockedValue { $0?.localAddress?.port } }

    /// Closes the listening socket.
    public func shutdown() async {
        let bound = channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }
}

/// Answers each request from ``AdminRouter`` and closes the connection. A
/// body is collected up to ``maximumBody`` bytes; a longer one gets 413. The
/// handler logs nothing about a request (a body may hold a CHAP secret).
final class AdminHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: any AdminState
    private let token: AdminToken?
    private let request = NIOLockedValueBox<(head: HTTPRequestHead, body: [UInt8], tooLarge: Bool)?>(nil)

    /// The largest request body read (a change's JSON is a few hundred bytes).
    static let maximumBody = 16 << 10

    init(state: any AdminState, token: AdminToken?) {
        self.state = state
        self.token = token
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request.withLockedValue { $0 = (head, [], false) }
        case .body(let buffer):
            request.withLockedValue { pending in
                guard var current = pending, !current.tooLarge else { return }
                if current.body.count + buffer.readableBytes > Self.maximumBody {
                    current.tooLarge = true
                    current.body = []
                } else {
                    current.body += buffer.readableBytesView
                }
                pending = current
            }
        case .end:
            guard let (head, body, tooLarge) = request.withLockedValue({ $0 }) else { return }
            if tooLarge {
                let failure = AdminFailure(
                    status: 413, error: "the body is longer than \(Self.maximumBody) bytes",
                    hint: "a change's JSON is a few hundred bytes")
                write(failure.response, head: head, context: context)
                return
            }
            let asked = AdminRequest(
                method: head.method.rawValue, uri: head.uri, authorization: head.headers.first(name: "Authorization"),
                idempotencyKey: head.headers.first(name: "Idempotency-Key"), body: body)
            let promise = context.eventLoop.makePromise(of: AdminResponse.self)
            let (state, token) = (self.state, self.token)
            promise.completeWithTask { await AdminRouter.respond(asked, state: state, token: token) }
            let bound = NIOLoopBound((context, self), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { answer in
                let (context, handler) = bound.value
                handler.write(answer, head: head, context: context)
            }
        }
    }

    private func write(_ answer: AdminResponse, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: answer.contentType)
        headers.add(name: "Content-Length", value: "\(answer.body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        for (name, value) in answer.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        let status = HTTPResponseStatus(statusCode: answer.status, reasonPhrase: answer.reason)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: answer.body.utf8.count)
            buffer.writeString(answer.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
