import BlockStorage
import ClusterModel
import Testing

@testable import ClusterWire

private typealias Machine = PeerServerConnectionStateMachine

private let server = NodeID(1)
private let client = NodeID(2)
private let io = PeerIO(subUnit: SubUnitID(lun: LUNID(1), index: 0), epoch: .initial, lba: 0, blockCount: 1)

private func hello(_ versions: ClosedRange<UInt16> = 1...1) -> PeerInbound {
    .frame(.hello(.init(minVersion: versions.lowerBound, maxVersion: versions.upperBound, nodeID: client)))
}

private func request(_ id: UInt64) -> PeerInbound { .frame(.request(id: id, .read(io))) }

/// A short, comparable rendering of an action.
private func show(_ action: Machine.Action) -> String {
    switch action {
    case .none: "none"
    case .send(let frame): "send \(describe(frame))"
    case .dispatch(let id, let request, let node): "dispatch \(id) \(request.kind) from \(node)"
    case .sendErrorAndClose(let error): "error \(error.code) \(error.requestID)"
    case .close: "close"
    }
}

private func serving(maxInFlight: Int = 256) -> Machine {
    var machine = Machine(localNodeID: server, maxInFlight: maxInFlight)
    _ = machine.frameReceived(hello())
    return machine
}

@Suite("Peer server connection state machine")
struct PeerServerConnectionStateMachineTests {
    @Test("hello is answered with the highest common version and the server's node")
    func handshake() {
        var machine = Machine(localNodeID: server, versions: 1...3)
        #expect(show(machine.frameReceived(hello(2...5))) == "send helloAck(3, node1)")
        #expect(machine.state == .serving(peer: client, version: 3))
        #expect(show(machine.frameReceived(request(1))) == "dispatch 1 read from node2")
    }

    @Test(
        "no common version: unsupportedVersion and close",
        arguments: [2...4, 0...0] as [ClosedRange<UInt16>])
    func noCommonVersion(_ versions: ClosedRange<UInt16>) {
        var machine = Machine(localNodeID: server)
        #expect(show(machine.frameReceived(hello(versions))) == "error unsupportedVersion 0")
        #expect(machine.state == .closed)
        #expect(show(machine.frameReceived(hello())) == "none")
    }

    @Test("anything but hello first: unexpectedFrame and close")
    func helloFirst() {
        let firsts: [PeerInbound] = [
            request(5),
            .malformedRequest(id: 5, PeerWireError(.unknownKind, "kind 99")),
            .frame(.reply(id: 1, .done)),
            .frame(.helloAck(.init(version: 1, nodeID: client))),
        ]
        for first in firsts {
            var machine = Machine(localNodeID: server)
            #expect(show(machine.frameReceived(first)) == "error unexpectedFrame 0")
            #expect(machine.state == .closed)
        }
    }

    @Test("after hello: a second hello, a reply or a helloAck is a protocol error")
    func unexpectedAfterHello() {
        let frames: [PeerInbound] = [
            hello(), .frame(.reply(id: 1, .done)), .frame(.helloAck(.init(version: 1, nodeID: client))),
        ]
        for frame in frames {
            var machine = serving()
            #expect(show(machine.frameReceived(frame)) == "error unexpectedFrame 0")
            #expect(show(machine.frameReceived(request(1))) == "none")
        }
    }

    @Test("an error frame from the peer closes without an answer")
    func peerError() {
        var machine = serving()
        #expect(show(machine.frameReceived(.frame(.error(.init(code: .malformed, message: "x"))))) == "close")
        #expect(machine.state == .closed)
    }

    @Test("a decoding error is answered with its code, once")
    func decodingError() {
        var machine = serving()
        #expect(show(machine.decodeFailed(PeerWireError(.oversized, "big"))) == "error oversized 0")
        #expect(show(machine.decodeFailed(PeerWireError(.malformed, "again"))) == "none")
    }

    @Test("a malformed request gets a badRequest reply and the connection goes on")
    func malformedRequest() {
        var machine = serving()
        let action = machine.frameReceived(.malformedRequest(id: 9, PeerWireError(.unknownKind, "request kind 99")))
        guard case .send(.reply(9, .failure(let failure))) = action else {
            Issue.record("\(show(action))")
            return
        }
        #expect(failure.code == .badRequest)
        #expect(failure.detail.contains("request kind 99"))
        #expect(show(machine.frameReceived(request(10))) == "dispatch 10 read from node2")
    }

    @Test("a request id already in flight is a protocol error")
    func duplicateID() {
        var machine = serving()
        _ = machine.frameReceived(request(4))
        #expect(show(machine.frameReceived(request(4))) == "error unexpectedFrame 4")
        var other = serving()
        _ = other.frameReceived(request(4))
        _ = other.requestCompleted(id: 4, reply: .done)
        #expect(show(other.frameReceived(request(4))) == "dispatch 4 read from node2")
    }

    @Test("replies carry the request's id, in completion order")
    func completionOrder() {
        var machine = serving()
        _ = machine.frameReceived(request(1))
        _ = machine.frameReceived(request(2))
        let second = machine.requestCompleted(id: 2, reply: .miscompare(offset: 3))
        let first = machine.requestCompleted(id: 1, reply: .done)
        #expect(second.reply.map(describe) == "reply(2, miscompare 3)")
        #expect(first.reply.map(describe) == "reply(1, done)")
        #expect(machine.inFlight == 0)
    }

    @Test("at the limit reads are held, extra requests wait, and a completion frees both")
    func inFlightLimit() {
        var machine = serving(maxInFlight: 2)
        let r1 = machine.readRequested()
        #expect(r1)
        #expect(show(machine.frameReceived(request(1))) == "dispatch 1 read from node2")
        #expect(show(machine.frameReceived(request(2))) == "dispatch 2 read from node2")
        let r2 = machine.readRequested()
        #expect(!r2)
        // Already read in the same batch: waits without running.
        #expect(show(machine.frameReceived(request(3))) == "none")
        #expect(machine.inFlight == 2)

        let one = machine.requestCompleted(id: 1, reply: .done)
        #expect(one.reply.map(describe) == "reply(1, done)")
        #expect(one.dispatch?.id == 3)
        #expect(!one.resumeReading)  // 2 and 3 run: still at the limit
        #expect(machine.inFlight == 2)

        let two = machine.requestCompleted(id: 2, reply: .done)
        #expect(two.dispatch == nil)
        #expect(two.resumeReading)
        let r3 = machine.readRequested()
        #expect(r3)
    }

    @Test("a peer that does not read replies stops our reading")
    func writability() {
        var machine = serving()
        let r4 = machine.writabilityChanged(false)
        #expect(!r4)
        let r5 = machine.readRequested()
        #expect(!r5)
        let r6 = machine.writabilityChanged(true)
        #expect(r6)
        let r7 = machine.writabilityChanged(true)
        #expect(!r7)
    }

    @Test("a reply too large for the wire becomes an ioError failure")
    func oversizedReply() {
        var machine = serving()
        _ = machine.frameReceived(request(1))
        let completion = machine.requestCompleted(id: 1, reply: .data(IOBuffer(count: PeerFrame.maxFrameLength)))
        guard case .reply(1, .failure(let failure)) = completion.reply else {
            Issue.record("\(completion.reply.map(describe) ?? "nil")")
            return
        }
        #expect(failure.code == .ioError)
    }

    @Test("after close, completions write nothing")
    func completionAfterClose() {
        var machine = serving()
        _ = machine.frameReceived(request(1))
        machine.channelClosed()
        #expect(machine.requestCompleted(id: 1, reply: .done).reply == nil)
    }

    @Test("no hello in time closes; after hello the timer is moot")
    func helloTimeout() {
        var waiting = Machine(localNodeID: server)
        let timedOut = waiting.helloTimedOut()
        #expect(show(timedOut) == "error unexpectedFrame 0")
        var done = serving()
        let moot = done.helloTimedOut()
        #expect(show(moot) == "none")
    }
}
