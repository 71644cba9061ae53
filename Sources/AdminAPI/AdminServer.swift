import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin HTTP endpoint (`GET /health`, `GET /metrics`) on NIOHTTP1. One
/// request per connection; the thin handler asks ``AdminRouter``.
public final class AdminServer: Sendable {
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let logger: Logger
    private let report: @Sendable () -> HealthReport
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    public init(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        report: @escaping @Sendable () -> HealthReport
    ) {
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
        self.report = report
    }

    /// Binds and starts serving.
    public func start() async throws {
        let report = self.report
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHTTPHandler(report: report))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLockedValue { $0 = bound }
        logger.info("admin endpoint listening", metadata: ["address": "\(host):\(port)"])
    }

    /// Closes the listening socket.
    public func shutdown() async {
        let bound = channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }
}

/// Answers each request from ``AdminRouter`` and closes the connection.
final class AdminHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let report: @Sendable () -> HealthReport
    private let request = NIOLockedValueBox<HTTPRequestHead?>(nil)

    init(report: @escaping @Sendable () -> HealthReport) { self.report = report }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request.withLockedValue { $0 = head }
        case .body:
            break
        case .end:
            guard let head = request.withLockedValue({ $0 }) else { return }
            let answer = AdminRouter.respond(method: head.method.rawValue, uri: head.uri, report: report)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: answer.contentType)
            headers.add(name: "Content-Length", value: "\(answer.body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            let status = HTTPResponseStatus(statusCode: answer.status, reasonPhrase: answer.reason)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                var buffer = context.channel.allocator.buffer(capacity: answer.body.utf8.count)
                buffer.writeString(answer.body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
