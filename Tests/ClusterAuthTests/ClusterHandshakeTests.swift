import ClusterAuth
import Testing

@Suite struct ClusterHandshakeTests {
    static let secret = ClusterSecret(text: "0123456789abcdef0123456789abcdef")!
    static let other = ClusterSecret(text: "fedcba9876543210fedcba9876543210")!
    static let initiatorNonce = [UInt8](repeating: 0x11, count: 32)
    static let responderNonce = [UInt8](repeating: 0x22, count: 32)

    /// Runs both machines against each other; returns what each side ended with.
    static func exchange(
        initiator secretI: ClusterSecret = secret, responder secretR: ClusterSecret = secret,
        purposeI: ClusterHandshakePurpose = .store, purposeR: ClusterHandshakePurpose = .store, extra: [UInt8] = []
    ) -> (ClusterHandshakeInitiator.Action, ClusterHandshakeResponder.Action) {
        var initiator = ClusterHandshakeInitiator(secret: secretI, purpose: purposeI, nonce: initiatorNonce)
        var responder = ClusterHandshakeResponder(secret: secretR, purpose: purposeR, nonce: responderNonce)
        let first = responder.receive(initiator.hello)
        guard case .send(let challenge) = first else { return (.wait, first) }
        let answer = initiator.receive(challenge)
        guard case .send(let proof) = answer else { return (answer, .wait) }
        let verdict = responder.receive(proof + extra)
        guard case .accept(let bytes, _) = verdict else {
            if case .refuse(let bytes?, _) = verdict { return (initiator.receive(bytes), verdict) }
            return (.wait, verdict)
        }
        return (initiator.receive(bytes), verdict)
    }

    @Test func bothSidesWithTheSecretAccept() {
        let (i, r) = Self.exchange(extra: [9, 8, 7])
        #expect(i == .accepted(leftover: []))
        #expect(r == .accept(verdict: [1], leftover: [9, 8, 7]))
    }

    @Test func aResponderWithAnotherSecretIsNotSentAProof() {
        let (i, _) = Self.exchange(responder: Self.other)
        guard case .refused(let reason) = i else {
            Issue.record("initiator went on: \(i)")
            return
        }
        #expect(reason.contains("does not prove"))
    }

    @Test func anInitiatorWithAnotherSecretIsRefused() {
        // The initiator checks the responder first, so give it a responder
        // that shares its secret while checking a proof made with another.
        var initiator = ClusterHandshakeInitiator(secret: Self.other, purpose: .store, nonce: Self.initiatorNonce)
        var responder = ClusterHandshakeResponder(secret: Self.secret, purpose: .store, nonce: Self.responderNonce)
        guard case .send(let challenge) = responder.receive(initiator.hello) else {
            Issue.record("no challenge")
            return
        }
        #expect({ if case .refused = initiator.receive(challenge) { true } else { false } }())
        // A proof made without the secret (here: 32 guessed bytes) is refused with a verdict.
        let answer = responder.receive([UInt8](repeating: 0xAB, count: 32))
        guard case .refuse(let verdict, let reason) = answer else {
            Issue.record("accepted a guessed proof: \(answer)")
            return
        }
        #expect(verdict == [0])
        #expect(reason.contains("does not hold the cluster secret"))
    }

    @Test func theResponderProofReflectedBackIsRefused() {
        let initiator = ClusterHandshakeInitiator(secret: Self.secret, purpose: .store, nonce: Self.initiatorNonce)
        var responder = ClusterHandshakeResponder(secret: Self.secret, purpose: .store, nonce: Self.responderNonce)
        guard case .send(let challenge) = responder.receive(initiator.hello) else {
            Issue.record("no challenge")
            return
        }
        let reflected = Array(challenge.suffix(32))
        #expect({ if case .refuse = responder.receive(reflected) { true } else { false } }())
    }

    @Test func aStoreHandshakeIsRefusedByThePeerPort() {
        let (_, r) = Self.exchange(purposeI: .store, purposeR: .peer)
        guard case .refuse(nil, let reason) = r else {
            Issue.record("peer port went on: \(r)")
            return
        }
        #expect(reason.contains("PEER"))
    }

    @Test func bytesOfAnotherProtocolAreRefusedAtOnce() {
        var responder = ClusterHandshakeResponder(secret: Self.secret, purpose: .store, nonce: Self.responderNonce)
        // dqlite's protocol version word, what a stock dqlite client sends first.
        let action = responder.receive([1, 0, 0, 0, 0, 0, 0, 0])
        #expect({ if case .refuse(nil, _) = action { true } else { false } }())
    }

    @Test func aHelloArrivingByteByByteIsAnswered() {
        let initiator = ClusterHandshakeInitiator(secret: Self.secret, purpose: .peer, nonce: Self.initiatorNonce)
        var responder = ClusterHandshakeResponder(secret: Self.secret, purpose: .peer, nonce: Self.responderNonce)
        var last = ClusterHandshakeResponder.Action.wait
        for byte in initiator.hello { last = responder.receive([byte]) }
        guard case .send(let challenge) = last else {
            Issue.record("no challenge after the whole hello: \(last)")
            return
        }
        #expect(challenge.count == 68)
        #expect(challenge.starts(with: Array("TSA1".utf8)))
    }

    @Test func nonceChangesTheProof() {
        var a = ClusterHandshakeResponder(secret: Self.secret, purpose: .store, nonce: Self.responderNonce)
        var b = ClusterHandshakeResponder(.init(secret: Self.secret, purpose: .store, nonce: [UInt8](repeating: 0x33, count: 32)))
        let hello = ClusterHandshakeInitiator(secret: Self.secret, purpose: .store, nonce: Self.initiatorNonce).hello
        #expect(a.receive(hello) != b.receive(hello))
    }

    @Test func shortSecretsAreRefused() {
        #expect(ClusterSecret(text: "short secret") == nil)
        #expect(ClusterSecret(text: "  0123456789abcdef \n") != nil)
        #expect(!"\(Self.secret)".contains("0123"))
    }
}

/// The machines with a given nonce, as the tests build them.
extension ClusterHandshakeInitiator {
    init(secret: ClusterSecret, purpose: ClusterHandshakePurpose, nonce: [UInt8]) {
        self.init(ClusterHandshakeSide(secret: secret, purpose: purpose, nonce: nonce))
    }
}

extension ClusterHandshakeResponder {
    init(secret: ClusterSecret, purpose: ClusterHandshakePurpose, nonce: [UInt8]) {
        self.init(ClusterHandshakeSide(secret: secret, purpose: purpose, nonce: nonce))
    }
}
