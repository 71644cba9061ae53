import BlockStorage
import ClusterModel
import Synchronization

/// The peer network of an in-process cluster: requests go straight to the
/// destination node's handler on a new task, with payloads copied as a real
/// wire would. Links can be cut (partitions), requests and replies lost at a
/// seeded rate, and deliveries reordered; a request that gets no reply ends
/// with `.unavailable` when the test advances the ``ManualClock`` past its
/// timeout, as a real peer timeout would.
public final class InProcessNetwork: Sendable {
    /// The clock the timeouts run on.
    public let clock: ManualClock

    private struct Link: Hashable {
        var from: NodeID
        var to: NodeID
    }

    private struct State {
        var handlers: [NodeID: any PeerRequestHandler] = [:]
        var cut: Set<Link> = []
        var lossRate = 0.0
        var random: UInt64 = 0x5EED
        var maximumDelayYields = 0
        var sent = 0
        var dropped = 0
        var log: [(from: NodeID, to: NodeID, kind: PeerRequestKind)] = []
    }

    private let state = Mutex(State())

    public init(clock: ManualClock = ManualClock()) {
        self.clock = clock
    }

    /// Makes `handler` the receiver of requests to `node`.
    public func register(_ node: NodeID, _ handler: any PeerRequestHandler) {
        state.withLock { $0.handlers[node] = handler }
    }

    /// The transport `node` sends with.
    public func transport(from node: NodeID) -> any PeerTransport { Endpoint(network: self, from: node) }

    /// Cuts both directions between `a` and `b`.
    public func partition(_ a: NodeID, _ b: NodeID) {
        state.withLock { s in
            s.cut.insert(Link(from: a, to: b))
            s.cut.insert(Link(from: b, to: a))
        }
    }

    /// Cuts `node` off from every registered node.
    public func isolate(_ node: NodeID) {
        state.withLock { s in
            for other in s.handlers.keys where other != node {
                s.cut.insert(Link(from: node, to: other))
                s.cut.insert(Link(from: other, to: node))
            }
        }
    }

    /// Restores every link and stops losing messages.
    public func heal() {
        state.withLock { s in
            s.cut.removeAll()
            s.lossRate = 0
        }
    }

    /// Loses each request and each reply with probability `rate` (deterministic for a seed).
    public func setLoss(rate: Double, seed: UInt64 = 0x5EED) {
        state.withLock { s in
            s.lossRate = rate
            s.random = seed
        }
    }

    /// Delays each delivery by up to `yields` scheduler turns, so messages overtake each other.
    public func setReordering(maximumYields yields: Int, seed: UInt64 = 0x0DE5) {
        state.withLock { s in
            s.maximumDelayYields = yields
            s.random = seed
        }
    }

    /// Requests sent and requests or replies dropped so far.
    public var counters: (sent: Int, dropped: Int) { state.withLock { ($0.sent, $0.dropped) } }

    /// The kinds of requests sent from `from` to `to`, in order.
    public func requests(from: NodeID, to: NodeID) -> [PeerRequestKind] {
        state.withLock { $0.log.filter { $0.from == from && $0.to == to }.map(\.kind) }
    }

    private struct Plan {
        var handler: (any PeerRequestHandler)?
        var dropRequest: Bool
        var dropReply: Bool
        var delay: Int
    }

    private func plan(_ request: PeerRequest, from: NodeID, to: NodeID) -> Plan {
        state.withLock { s in
            s.sent += 1
            s.log.append((from, to, request.kind))
            func draw() -> Double {
                s.random = s.random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Double(s.random >> 11) / 9_007_199_254_740_992.0
            }
            let linked = !s.cut.contains(Link(from: from, to: to)) && !s.cut.contains(Link(from: to, to: from))
            let dropRequest = !linked || (s.lossRate > 0 && draw() < s.lossRate)
            let dropReply = !linked || (s.lossRate > 0 && draw() < s.lossRate)
            if dropRequest || dropReply { s.dropped += 1 }
            let delay = s.maximumDelayYields > 0 ? Int(draw() * Double(s.maximumDelayYields + 1)) : 0
            return Plan(handler: s.handlers[to], dropRequest: dropRequest, dropReply: dropReply, delay: delay)
        }
    }

    func deliver(_ request: PeerRequest, from: NodeID, to: NodeID, timeout: Duration) async -> PeerReply {
        let plan = plan(request, from: from, to: to)
        let onWire = request.copied()
        let clock = self.clock
        let first = FirstReply()
        return await withCheckedContinuation { (continuation: CheckedContinuation<PeerReply, Never>) in
            first.arm(continuation)
            let timer = Task {
                await clock.sleep(for: timeout)
                first.offer(.failure(PeerFailure(.unavailable, detail: "no reply from \(to) within \(timeout)")))
            }
            guard let handler = plan.handler, !plan.dropRequest else { return }
            Task {
                for _ in 0..<plan.delay { await Task.yield() }
                let reply = await handler.handle(onWire, from: from)
                guard !plan.dropReply else { return }
                for _ in 0..<plan.delay { await Task.yield() }
                if first.offer(reply.copied()) { timer.cancel() }
            }
        }
    }

    private struct Endpoint: PeerTransport {
        let network: InProcessNetwork
        let from: NodeID

        func send(_ request: PeerRequest, to node: NodeID, timeout: Duration) async -> PeerReply {
            await network.deliver(request, from: from, to: node, timeout: timeout)
        }
    }
}

/// Resumes a continuation with the first reply offered (the reply or the timeout).
private final class FirstReply: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<PeerReply, Never>?, done: Bool)>((nil, false))

    func arm(_ continuation: CheckedContinuation<PeerReply, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    @discardableResult
    func offer(_ reply: PeerReply) -> Bool {
        let continuation: CheckedContinuation<PeerReply, Never>? = state.withLock { s in
            guard !s.done else { return nil }
            s.done = true
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(returning: reply)
        return continuation != nil
    }
}

extension IOBuffer {
    /// A fresh buffer holding `length` bytes from `offset`.
    func copy(from offset: Int = 0, length: Int? = nil) -> IOBuffer {
        let n = length ?? (count - offset)
        let copy = IOBuffer(count: n)
        copy.baseAddress.copyMemory(from: baseAddress + offset, byteCount: n)
        return copy
    }
}

extension PeerRequest {
    /// The request as the receiver sees it after a wire: its own copy of the data.
    func copied() -> PeerRequest {
        func copy(_ w: PeerWrite) -> PeerWrite {
            PeerWrite(io: w.io, fua: w.fua, data: w.data.copy(from: w.offset, length: w.length), offset: 0)
        }
        switch self {
        case .write(let w): return .write(copy(w))
        case .replicate(let w): return .replicate(copy(w))
        case .compareAndWrite(let w): return .compareAndWrite(copy(w))
        default: return self
        }
    }
}

extension PeerReply {
    func copied() -> PeerReply {
        if case .data(let buffer) = self { return .data(buffer.copy()) }
        return self
    }
}
