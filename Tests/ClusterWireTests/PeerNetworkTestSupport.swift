import ClusterAuth
import BlockStorage
import ClusterModel
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import ClusterWire

let serverNode = NodeID(1)
let clientNode = NodeID(2)
/// Requests for this LUN wait at the handler's gate.
let hangingLUN = LUNID(0xDEAD)
let testIO = PeerIO(subUnit: SubUnitID(lun: LUNID(5), index: 1), epoch: Epoch(3), lba: 40, blockCount: 1)

/// Holds requests until opened; counts arrivals.
actor Gate {
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private(set) var arrivals = 0
    private var isOpen = false

    func wait() async {
        arrivals += 1
        guard !isOpen else { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }

    /// Polls until `count` requests arrived; false after `limit`.
    nonisolated func waitForArrivals(_ count: Int, within limit: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await arrivals >= count { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return false
    }
}

/// Arrival and completion order of requests, by the index in their payload.
actor Recorder {
    private(set) var arrived: [UInt32] = []
    private(set) var completed: [UInt32] = []
    func arrive(_ index: UInt32) { arrived.append(index) }
    func complete(_ index: UInt32) { completed.append(index) }
}

/// Answers every kind so that the reply shows the request reached it intact:
/// writes echo their data, reads return the sender and the LBA, unmaps
/// fail with the next epoch, flushes of ``hangingLUN`` wait at the gate.
struct EchoHandler: PeerRequestHandler {
    let gate = Gate()
    let recorder = Recorder()
    var jitter = false

    func handle(_ request: PeerRequest, from node: NodeID) async -> PeerReply {
        switch request {
        case .write(let write), .replicate(let write), .compareAndWrite(let write):
            let bytes = write.data.array(write.offset..<write.data.count)
            let index = bytes.count >= 4 ? bytes[0..<4].reduce(0) { $0 << 8 | UInt32($1) } : 0
            await recorder.arrive(index)
            if jitter { try? await Task.sleep(for: .microseconds(Int.random(in: 0...5000))) }
            await recorder.complete(index)
            return .data(IOBuffer(bytes: bytes))
        case .read(let io):
            var bytes: [UInt8] = []
            for value in [node.rawValue, io.lba] {
                bytes += (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
            }
            return .data(IOBuffer(bytes: bytes))
        case .unmap(let io), .replicateUnmap(let io):
            return .failure(PeerFailure(.staleEpoch, epoch: io.epoch.next, detail: "from \(node)"))
        case .allocation(let io):
            return .extents([BlockExtent(lba: io.lba, blockCount: UInt64(io.blockCount), mapped: true)])
        case .flush(let lun):
            if lun == hangingLUN { await gate.wait() }
            return .done
        case .contextChange:
            return .done
        case .activityLog(let lun):
            return .extents([BlockExtent(lba: lun.rawValue, blockCount: 8192, mapped: true)])
        case .ping:
            return .done
        }
    }
}

func writeRequest(_ index: UInt32, bytes count: Int = 4096) -> PeerRequest {
    let data = IOBuffer(count: count)
    for i in 0..<count { data.bytes[i] = UInt8(truncatingIfNeeded: Int(index) &* 31 &+ i) }
    data.bytes.storeBytes(of: index.bigEndian, as: UInt32.self)
    return .write(PeerWrite(io: testIO, fua: false, data: data))
}

func expectedEcho(_ request: PeerRequest) -> [UInt8] {
    guard case .write(let write) = request else { return [] }
    return write.data.array()
}

/// A server on 127.0.0.1 whose hello timeout outlasts any stall of a loaded
/// test run: the tests that use it are about other things.
func patientServer(
    _ handler: any PeerRequestHandler, port: Int = 0, nodeID: NodeID = serverNode, secret: ClusterSecret? = nil
) -> PeerServer {
    PeerServer(host: "127.0.0.1", port: port, nodeID: nodeID, handler: handler, helloTimeout: .seconds(60), secret: secret)
}

/// A server on 127.0.0.1 and a client that knows its address.
struct PeerHarness {
    let server: PeerServer
    let client: PeerClient
    let port: Int

    /// `serverSecret` and `clientSecret`: the cluster secrets each side
    /// holds (nil: no cluster handshake on that side).
    static func start(
        handler: any PeerRequestHandler, port: Int = 0, nodeID: NodeID = serverNode, serverSecret: ClusterSecret? = nil,
        clientSecret: ClusterSecret? = nil
    ) async throws -> PeerHarness {
        let server = patientServer(handler, port: port, nodeID: nodeID, secret: serverSecret)
        try await server.start()
        let port = try #require(server.boundPort)
        let client = PeerClient(
            nodeID: clientNode,
            address: { node in
                node == serverNode ? NodeAddress(host: "127.0.0.1", port: port) : nil
            }, handshakeTimeout: .seconds(10), secret: clientSecret)
        return PeerHarness(server: server, client: client, port: port)
    }

    func stop() async {
        await client.close()
        await server.shutdown()
    }
}

func isUnavailable(_ reply: PeerReply) -> Bool {
    if case .failure(let failure) = reply, failure.code == .unavailable { return true }
    return false
}

/// A hand-driven TCP peer that sends arbitrary bytes and sees the raw answer.
final class RawPeer: Sendable {
    enum Event: Sendable {
        case inbound(PeerInbound)
        case streamError(PeerWireError)
        case closed
    }

    /// Collects what the server sends; touched only on the channel's loop.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var buffer = ByteBuffer()
        var closed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            buffer.writeBuffer(&bytes)
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed = true
        }

        func take() -> Event? {
            do {
                if let inbound = try PeerFrameDecoder().decode(&buffer) {
                    buffer.discardReadBytes()
                    return .inbound(inbound)
                }
            } catch {
                return .streamError(error)
            }
            return closed ? .closed : nil
        }
    }

    let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int) async throws -> RawPeer {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawPeer(channel: channel, collector: collector)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func send(_ frame: PeerFrame) async throws {
        try await send(encodedBytes(frame))
    }

    func sendHello(min: UInt16 = 1, max: UInt16 = 1) async throws {
        try await send(.hello(.init(minVersion: min, maxVersion: max, nodeID: clientNode)))
    }

    /// The next thing the server did; nil if nothing happened within `limit`.
    func next(within limit: Duration = .seconds(10)) async throws -> Event? {
        let deadline = ContinuousClock.now + limit
        while true {
            let collector = collector
            if let event = try await channel.eventLoop.submit({ collector.take() }).get() { return event }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The next frame, or nil on anything else.
    func nextFrame(within limit: Duration = .seconds(10)) async throws -> PeerFrame? {
        if case .inbound(.frame(let frame)) = try await next(within: limit) { return frame }
        return nil
    }

    func close() async {
        try? await channel.close()
    }
}

/// Answers every request `done` and records, per request, whether it ran
/// on a NIO event loop's thread.
final class LoopRecordingHandler: PeerRequestHandler, Sendable {
    private let onLoop = Mutex<[Bool]>([])

    /// One entry per request handled: true when it ran on an event loop.
    var ranOnLoop: [Bool] { onLoop.withLock { $0 } }

    func handle(_ request: PeerRequest, from node: NodeID) async -> PeerReply {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        onLoop.withLock { $0.append(current?.inEventLoop == true) }
        return .done
    }
}
