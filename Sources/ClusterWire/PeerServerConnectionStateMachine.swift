import ClusterModel
import NIOCore

/// The server side of one peer connection, as a value: the hello handshake,
/// the set of requests in flight, and when to stop reading from the socket.
/// Every input returns what the handler must do; a peer's bad input becomes
/// an action (an error frame and close, or a `badRequest` reply), never a trap.
struct PeerServerConnectionStateMachine {
    /// Where the connection is.
    enum State: Equatable {
        /// Waiting for the client's hello, which must be the first frame.
        case awaitingHello
        /// Hello done: requests from `peer` are served under `version`.
        case serving(peer: NodeID, version: UInt16)
        /// An error frame was sent, the peer sent one, or the channel closed; inputs are ignored.
        case closed
    }

    /// What the handler does after an input.
    enum Action {
        /// Nothing.
        case none
        /// Write this frame (the helloAck, or a `badRequest` reply).
        case send(PeerFrame)
        /// Run the request with the handler; report its reply with ``requestCompleted(id:reply:)``.
        case dispatch(id: UInt64, PeerRequest, from: NodeID)
        /// Write this error frame, then close.
        case sendErrorAndClose(PeerFrame.ProtocolError)
        /// Close without a word (the peer sent an error frame).
        case close
    }

    /// What the handler does when a request's reply is ready.
    struct Completion {
        /// The reply frame to write; nil once the connection is closed.
        var reply: PeerFrame?
        /// A request that was waiting for a free slot and may run now.
        var dispatch: (id: UInt64, request: PeerRequest, from: NodeID)?
        /// Pass on the read that was held back.
        var resumeReading: Bool
    }

    /// The most requests dispatched at once on one connection; beyond it the
    /// connection stops reading, so a peer cannot make the server commit
    /// more than this many requests' memory and tasks.
    static let defaultMaxInFlight = 256

    private(set) var state: State = .awaitingHello
    let localNodeID: NodeID
    let maxInFlight: Int
    let versions: ClosedRange<UInt16>

    /// Ids of requests dispatched or waiting; one id is in flight at most once.
    private var active: Set<UInt64> = []
    /// Requests that arrived, in the same socket read, after the limit was
    /// reached: at most one read's worth.
    private var waiting = CircularBuffer<(id: UInt64, request: PeerRequest)>()
    /// A read was asked for while blocked and is held back.
    private var readHeld = false
    private var writable = true

    init(
        localNodeID: NodeID, maxInFlight: Int = Self.defaultMaxInFlight,
        versions: ClosedRange<UInt16> = PeerFrame.protocolVersions
    ) {
        self.localNodeID = localNodeID
        self.maxInFlight = maxInFlight
        self.versions = versions
    }

    /// Requests running in the handler.
    var inFlight: Int { active.count - waiting.count }

    /// Reading is paused: the limit is reached or the peer is not reading our replies.
    private var blocked: Bool { active.count >= maxInFlight || !writable }

    mutating func frameReceived(_ inbound: PeerInbound) -> Action {
        switch state {
        case .closed:
            return .none
        case .awaitingHello:
            guard case .frame(let frame) = inbound else {
                return fail(PeerWireError(.unexpectedFrame, "hello must be the first frame, got a request"))
            }
            switch frame {
            case .hello(let hello):
                return helloReceived(hello)
            case .error:
                state = .closed
                return .close
            default:
                return fail(PeerWireError(.unexpectedFrame, "hello must be the first frame, got \(frame.type)"))
            }
        case .serving(let peer, _):
            switch inbound {
            case .frame(.request(let id, let request)):
                let running = inFlight
                guard active.insert(id).inserted else {
                    return fail(PeerWireError(.unexpectedFrame, "request id \(id) is already in flight"), requestID: id)
                }
                guard running < maxInFlight else {
                    waiting.append((id, request))
                    return .none
                }
                return .dispatch(id: id, request, from: peer)
            case .malformedRequest(let id, let error):
                guard !active.contains(id) else {
                    return fail(PeerWireError(.unexpectedFrame, "request id \(id) is already in flight"), requestID: id)
                }
                return .send(.reply(id: id, .failure(PeerFailure(.badRequest, detail: error.description))))
            case .frame(.error):
                state = .closed
                return .close
            case .frame(let frame):
                return fail(PeerWireError(.unexpectedFrame, "a server does not accept \(frame.type) frames"))
            }
        }
    }

    /// The byte stream could not be decoded.
    mutating func decodeFailed(_ error: PeerWireError) -> Action {
        guard state != .closed else { return .none }
        return fail(error)
    }

    /// The client sent no hello in time.
    mutating func helloTimedOut() -> Action {
        guard state == .awaitingHello else { return .none }
        return fail(PeerWireError(.unexpectedFrame, "no hello in time"))
    }

    /// The handler answered request `id`.
    mutating func requestCompleted(id: UInt64, reply: PeerReply) -> Completion {
        guard case .serving(let peer, _) = state else {
            return Completion(reply: nil, dispatch: nil, resumeReading: false)
        }
        active.remove(id)
        var frame = PeerFrame.reply(id: id, reply)
        do {
            try frame.checkEncodable()
        } catch {
            frame = .reply(
                id: id, .failure(PeerFailure(.ioError, detail: "reply does not fit the wire: \(error.detail)")))
        }
        var completion = Completion(reply: frame, dispatch: nil, resumeReading: false)
        if inFlight < maxInFlight, let next = waiting.popFirst() {
            completion.dispatch = (next.id, next.request, peer)
        }
        completion.resumeReading = takeHeldRead()
        return completion
    }

    /// The channel asks to read more; false holds the read back until a slot frees.
    mutating func readRequested() -> Bool {
        guard blocked else { return true }
        readHeld = true
        return false
    }

    /// The channel's writability changed; true passes on a held read.
    mutating func writabilityChanged(_ isWritable: Bool) -> Bool {
        writable = isWritable
        return takeHeldRead()
    }

    /// The channel closed.
    mutating func channelClosed() {
        state = .closed
        waiting.removeAll()
    }

    private mutating func takeHeldRead() -> Bool {
        guard readHeld, !blocked else { return false }
        readHeld = false
        return true
    }

    private mutating func helloReceived(_ hello: PeerFrame.Hello) -> Action {
        let low = max(hello.minVersion, versions.lowerBound)
        let high = min(hello.maxVersion, versions.upperBound)
        guard low <= high else {
            return fail(
                PeerWireError(
                    .unsupportedVersion,
                    "client speaks \(hello.minVersion)...\(hello.maxVersion), server \(versions.lowerBound)...\(versions.upperBound)"
                ))
        }
        state = .serving(peer: hello.nodeID, version: high)
        return .send(.helloAck(PeerFrame.HelloAck(version: high, nodeID: localNodeID)))
    }

    private mutating func fail(_ error: PeerWireError, requestID: UInt64 = 0) -> Action {
        state = .closed
        waiting.removeAll()
        return .sendErrorAndClose(PeerFrame.ProtocolError(error, requestID: requestID))
    }
}
