import CClusterAuth

/// Which port a handshake opens: a proof made for one is refused by the
/// other, so the store's and the peer port's exchanges cannot stand in for
/// each other.
public enum ClusterHandshakePurpose: String, Sendable {
    /// The metadata store (dqlite) port.
    case store = "STOR"
    /// The node-to-node I/O (wire) port.
    case peer = "PEER"

    var tag: [UInt8] { Array(rawValue.utf8) }
}

/// The fixed sizes and constants of the handshake (CClusterAuth.h has the layout).
enum ClusterHandshakeWire {
    static let magic = Array(TESSERA_AUTH_MAGIC.utf8)
    static let nonceLength = Int(TESSERA_AUTH_NONCE_LENGTH)
    static let proofLength = Int(TESSERA_AUTH_PROOF_LENGTH)
    static let helloLength = magic.count + Int(TESSERA_AUTH_PURPOSE_LENGTH) + nonceLength
    static let challengeLength = magic.count + nonceLength + proofLength
    static let accepted = UInt8(TESSERA_AUTH_VERDICT_ACCEPTED)
    static let refused = UInt8(TESSERA_AUTH_VERDICT_REFUSED)

    static func proof(
        _ secret: ClusterSecret, _ purpose: ClusterHandshakePurpose, role: Character, initiatorNonce: [UInt8],
        responderNonce: [UInt8]
    ) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: proofLength)
        let rc = tessera_auth_proof(
            secret.bytes, secret.bytes.count, purpose.tag, UInt8(ascii: role.unicodeScalars.first!), initiatorNonce,
            responderNonce, &out)
        return rc == 0 ? out : nil
    }

    static func equal(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == proofLength, b.count == proofLength else { return false }
        return Array(b).withUnsafeBufferPointer { tessera_auth_proofs_equal(a, $0.baseAddress) == 1 }
    }

    /// A fresh nonce, or nil without a random source.
    static func nonce() -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: nonceLength)
        return tessera_auth_random(&out, out.count) == 0 ? out : nil
    }
}

/// What one end of a handshake holds: the secret, the port's purpose and
/// its own nonce, fresh for every connection.
public struct ClusterHandshakeSide: Sendable {
    let secret: ClusterSecret
    let purpose: ClusterHandshakePurpose
    let nonce: [UInt8]

    /// With a given nonce (tests pass their own).
    public init(secret: ClusterSecret, purpose: ClusterHandshakePurpose, nonce: [UInt8]) {
        self.secret = secret
        self.purpose = purpose
        self.nonce = nonce
    }

    /// With a fresh random nonce; nil without a random source.
    public init?(secret: ClusterSecret, purpose: ClusterHandshakePurpose) {
        guard let nonce = ClusterHandshakeWire.nonce() else { return nil }
        self.init(secret: secret, purpose: purpose, nonce: nonce)
    }
}

/// The accepting side of the handshake, as a pure machine: bytes in, what
/// to do out. The responder proves the secret first (its challenge carries
/// its proof), then checks the initiator's.
public struct ClusterHandshakeResponder: Sendable {
    /// What the I/O shell does next.
    public enum Action: Equatable, Sendable {
        /// Not enough bytes yet.
        case wait
        /// Send these bytes and go on reading.
        case send([UInt8])
        /// Send the verdict; the connection is authenticated. `leftover` is
        /// what the initiator sent after its proof: the first bytes of the
        /// protected protocol.
        case accept(verdict: [UInt8], leftover: [UInt8])
        /// Close the connection (after sending `verdict` when there is one).
        case refuse(verdict: [UInt8]?, reason: String)
    }

    private enum State: Sendable {
        case awaitingHello
        case awaitingProof(initiatorNonce: [UInt8])
        case done
    }

    private let side: ClusterHandshakeSide
    private var secret: ClusterSecret { side.secret }
    private var purpose: ClusterHandshakePurpose { side.purpose }
    private var nonce: [UInt8] { side.nonce }
    private var state = State.awaitingHello
    private var buffered: [UInt8] = []

    public init(_ side: ClusterHandshakeSide) { self.side = side }

    /// Takes bytes from the connection.
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> Action {
        buffered.append(contentsOf: bytes)
        switch state {
        case .awaitingHello:
            guard buffered.count >= ClusterHandshakeWire.helloLength else {
                return buffered.starts(with: ClusterHandshakeWire.magic.prefix(buffered.count))
                    ? .wait : refuse(verdict: nil, "not a Tessera cluster handshake (no TSA1 hello)")
            }
            let hello = buffered[..<ClusterHandshakeWire.helloLength]
            buffered.removeFirst(ClusterHandshakeWire.helloLength)
            guard hello.starts(with: ClusterHandshakeWire.magic) else {
                return refuse(verdict: nil, "not a Tessera cluster handshake (no TSA1 hello)")
            }
            let tag = Array(hello.dropFirst(4).prefix(4))
            guard tag == purpose.tag else {
                let asked = String(decoding: tag, as: UTF8.self)
                return refuse(verdict: nil, "handshake for port \"\(asked)\", this is the \(purpose.rawValue) port")
            }
            let initiatorNonce = Array(hello.suffix(ClusterHandshakeWire.nonceLength))
            guard
                let proof = ClusterHandshakeWire.proof(
                    secret, purpose, role: "R", initiatorNonce: initiatorNonce, responderNonce: nonce)
            else { return refuse(verdict: nil, "cannot compute the handshake's HMAC") }
            state = .awaitingProof(initiatorNonce: initiatorNonce)
            return .send(ClusterHandshakeWire.magic + nonce + proof)
        case .awaitingProof(let initiatorNonce):
            guard buffered.count >= ClusterHandshakeWire.proofLength else { return .wait }
            let proof = buffered[..<ClusterHandshakeWire.proofLength]
            let leftover = Array(buffered.dropFirst(ClusterHandshakeWire.proofLength))
            buffered = []
            guard
                let expected = ClusterHandshakeWire.proof(
                    secret, purpose, role: "I", initiatorNonce: initiatorNonce, responderNonce: nonce),
                ClusterHandshakeWire.equal(expected, proof)
            else {
                return refuse(verdict: [ClusterHandshakeWire.refused], "wrong proof: the connecting side does not hold the cluster secret")
            }
            state = .done
            return .accept(verdict: [ClusterHandshakeWire.accepted], leftover: leftover)
        case .done:
            return .wait
        }
    }

    private mutating func refuse(verdict: [UInt8]?, _ reason: String) -> Action {
        state = .done
        buffered = []
        return .refuse(verdict: verdict, reason: reason)
    }
}

/// The connecting side of the handshake, as a pure machine.
public struct ClusterHandshakeInitiator: Sendable {
    /// What the I/O shell does next.
    public enum Action: Equatable, Sendable {
        /// Not enough bytes yet.
        case wait
        /// Send these bytes (the proof) and go on reading.
        case send([UInt8])
        /// Authenticated; `leftover` is protected-protocol data that came with the verdict.
        case accepted(leftover: [UInt8])
        /// Close the connection.
        case refused(reason: String)
    }

    private enum State: Sendable {
        case awaitingChallenge
        case awaitingVerdict
        case done
    }

    private let side: ClusterHandshakeSide
    private var secret: ClusterSecret { side.secret }
    private var purpose: ClusterHandshakePurpose { side.purpose }
    private var nonce: [UInt8] { side.nonce }
    private var state = State.awaitingChallenge
    private var buffered: [UInt8] = []

    public init(_ side: ClusterHandshakeSide) { self.side = side }

    /// The first message, sent as soon as the connection is up.
    public var hello: [UInt8] { ClusterHandshakeWire.magic + purpose.tag + nonce }

    /// Takes bytes from the connection.
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> Action {
        buffered.append(contentsOf: bytes)
        switch state {
        case .awaitingChallenge:
            guard buffered.count >= ClusterHandshakeWire.challengeLength else { return .wait }
            let challenge = buffered[..<ClusterHandshakeWire.challengeLength]
            buffered.removeFirst(ClusterHandshakeWire.challengeLength)
            guard challenge.starts(with: ClusterHandshakeWire.magic) else {
                return refused("the other side does not speak the Tessera cluster handshake")
            }
            let responderNonce = Array(challenge.dropFirst(4).prefix(ClusterHandshakeWire.nonceLength))
            guard
                let expected = ClusterHandshakeWire.proof(
                    secret, purpose, role: "R", initiatorNonce: nonce, responderNonce: responderNonce),
                ClusterHandshakeWire.equal(expected, challenge.suffix(ClusterHandshakeWire.proofLength)),
                let proof = ClusterHandshakeWire.proof(
                    secret, purpose, role: "I", initiatorNonce: nonce, responderNonce: responderNonce)
            else {
                return refused("the other side does not prove this cluster's secret (a different cluster, or an impostor)")
            }
            state = .awaitingVerdict
            return .send(proof)
        case .awaitingVerdict:
            guard let verdict = buffered.first else { return .wait }
            let leftover = Array(buffered.dropFirst())
            buffered = []
            guard verdict == ClusterHandshakeWire.accepted else {
                return refused("refused: the other side holds a different cluster secret")
            }
            state = .done
            return .accepted(leftover: leftover)
        case .done:
            return .wait
        }
    }

    private mutating func refused(_ reason: String) -> Action {
        state = .done
        buffered = []
        return .refused(reason: reason)
    }
}
