import COpenSSL

/// CHAP secrets for one direction or both (RFC 7143 §12.1.3). The secrets
/// never leave this value through its descriptions: printing or dumping it
/// shows the users only.
public struct CHAPCredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The name the initiator must send in CHAP_N.
    public var user: String
    /// The secret the initiator proves it knows.
    public var secret: String
    /// The name the target answers with in mutual CHAP (CHAP_N from the target).
    public var mutualUser: String?
    /// The secret the target proves it knows in mutual CHAP.
    public var mutualSecret: String?

    /// Creates credentials; mutual CHAP is possible only when both mutual fields are set.
    public init(user: String, secret: String, mutualUser: String? = nil, mutualSecret: String? = nil) {
        self.user = user
        self.secret = secret
        self.mutualUser = mutualUser
        self.mutualSecret = mutualSecret
    }

    /// Whether the target authenticates itself too.
    public var isMutual: Bool { mutualUser != nil && mutualSecret != nil }

    public var description: String {
        "CHAP(user: \(user), secret: <redacted>"
            + (mutualUser.map { ", mutual_user: \($0), mutual_secret: <redacted>" } ?? "")
            + ")"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["user": user, "mutualUser": mutualUser as Any]) }
}

/// The CHAP digest algorithms the target accepts, by their CHAP_A number.
///
/// RFC 7143 §12.1.3 and RFC 1994: CHAP_A=5 is MD5; CHAP_A=7 is SHA-256
/// (IANA PPP authentication algorithms, used by RFC 7143bis and open-iscsi).
public enum CHAPAlgorithm: UInt8, Sendable, CaseIterable {
    /// MD5, 16-byte responses.
    case md5 = 5
    /// SHA-256, 32-byte responses.
    case sha256 = 7

    /// The length of a response (and of the challenges the target sends).
    public var digestLength: Int {
        switch self {
        case .md5: 16
        case .sha256: 32
        }
    }

    /// RFC 1994 §4.1: Response = H(Identifier || secret || Challenge).
    /// Returns nil only if libcrypto fails.
    public func response(identifier: UInt8, secret: [UInt8], challenge: [UInt8]) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        let md: OpaquePointer? =
            switch self {
            case .md5: EVP_md5()
            case .sha256: EVP_sha256()
            }
        guard EVP_DigestInit_ex(context, md, nil) == 1 else { return nil }
        var id = identifier
        guard EVP_DigestUpdate(context, &id, 1) == 1 else { return nil }
        let secretOK = secret.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) == 1 }
        let challengeOK = challenge.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) == 1 }
        guard secretOK, challengeOK else { return nil }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &out, &length) == 1 else { return nil }
        return Array(out.prefix(Int(length)))
    }
}

/// Where CHAP identifiers and challenges come from. Production uses
/// libcrypto's `RAND_bytes`; tests inject fixed bytes.
public struct LoginRandomSource: Sendable {
    /// Returns `count` random bytes.
    public var bytes: @Sendable (Int) -> [UInt8]

    /// Creates a source from a closure.
    public init(bytes: @escaping @Sendable (Int) -> [UInt8]) {
        self.bytes = bytes
    }

    /// libcrypto's CSPRNG; falls back to the system generator if RAND_bytes fails.
    public static let openSSL = LoginRandomSource { count in
        var buffer = [UInt8](repeating: 0, count: count)
        let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            return RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(raw.count)) == 1
        }
        if !ok {
            var generator = SystemRandomNumberGenerator()
            for index in buffer.indices { buffer[index] = generator.next() }
        }
        return buffer
    }

    /// A deterministic source that repeats `pattern` (tests).
    public static func repeating(_ pattern: [UInt8]) -> LoginRandomSource {
        LoginRandomSource { count in
            guard !pattern.isEmpty else { return [UInt8](repeating: 0, count: count) }
            return (0..<count).map { pattern[$0 % pattern.count] }
        }
    }
}

/// Compares two byte strings in time independent of where they differ.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// The target side of one CHAP exchange in the security stage (RFC 7143 §12.1.3):
/// CHAP_A from the initiator → CHAP_A, CHAP_I, CHAP_C from the target →
/// CHAP_N, CHAP_R (and CHAP_I, CHAP_C for mutual CHAP) from the initiator →
/// CHAP_N, CHAP_R from the target when mutual.
struct CHAPAuthenticator: Sendable {
    /// Where the exchange stands.
    enum State: Sendable, Equatable {
        /// AuthMethod=CHAP was agreed; the initiator's CHAP_A is next.
        case awaitingAlgorithm
        /// The challenge went out; CHAP_N/CHAP_R are next.
        case awaitingResponse(algorithm: CHAPAlgorithm, identifier: UInt8, challenge: [UInt8])
        /// The initiator is authenticated (and the target too, when mutual).
        case authenticated
    }

    /// What one step produced.
    enum Step: Sendable, Equatable {
        /// Send these keys and wait for more.
        case reply(TextParameters)
        /// Authentication succeeded; send these keys (empty unless mutual).
        case authenticated(TextParameters)
        /// Authentication failed (RFC 7143 §11.13.5: status 0x0201).
        case failed(String)
    }

    /// The current state.
    private(set) var state: State = .awaitingAlgorithm
    let credentials: CHAPCredentials
    let algorithms: [CHAPAlgorithm]

    /// Creates an exchange that accepts `algorithms` (target preference is the initiator's order).
    init(credentials: CHAPCredentials, algorithms: [CHAPAlgorithm] = [.sha256, .md5]) {
        self.credentials = credentials
        self.algorithms = algorithms
    }

    /// Feeds the CHAP keys of one (reassembled) login request.
    mutating func receive(_ keys: TextParameters, random: LoginRandomSource) -> Step {
        switch state {
        case .awaitingAlgorithm:
            guard let offered = keys["CHAP_A"] else {
                return .failed("CHAP_A missing after AuthMethod=CHAP")
            }
            // RFC 7143 §12.1.3: the target picks one algorithm from the initiator's list.
            let numbers = offered.split(separator: ",").compactMap { UInt8($0) }
            guard
                let algorithm = numbers.lazy.compactMap({ CHAPAlgorithm(rawValue: $0) })
                    .first(where: { algorithms.contains($0) })
            else {
                return .failed("no supported CHAP_A in \(offered)")
            }
            let identifierBytes = random.bytes(1)
            let identifier = identifierBytes.first ?? 0
            let challenge = random.bytes(algorithm.digestLength)
            state = .awaitingResponse(algorithm: algorithm, identifier: identifier, challenge: challenge)
            var reply = TextParameters()
            reply.append("CHAP_A", String(algorithm.rawValue))
            reply.append("CHAP_I", String(identifier))
            reply.append("CHAP_C", BinaryValue.encodeHex(challenge))
            return .reply(reply)

        case .awaitingResponse(let algorithm, let identifier, let challenge):
            guard let name = keys["CHAP_N"], let responseText = keys["CHAP_R"] else {
                return .failed("CHAP_N or CHAP_R missing")
            }
            guard let response = BinaryValue.decode(responseText), response.count == algorithm.digestLength else {
                return .failed("malformed CHAP_R")
            }
            guard name == credentials.user,
                let expected = algorithm.response(
                    identifier: identifier, secret: Array(credentials.secret.utf8), challenge: challenge),
                constantTimeEqual(expected, response)
            else {
                return .failed("CHAP response does not match for \(name)")
            }
            var reply = TextParameters()
            let initiatorIdentifier = keys["CHAP_I"]
            let initiatorChallenge = keys["CHAP_C"]
            if initiatorIdentifier != nil || initiatorChallenge != nil {
                // Mutual CHAP: the initiator challenges the target.
                guard let idText = initiatorIdentifier, let mutualIdentifier = NumericValue.parse(idText),
                    mutualIdentifier <= 255,
                    let challengeText = initiatorChallenge, let mutualChallenge = BinaryValue.decode(challengeText),
                    !mutualChallenge.isEmpty
                else {
                    return .failed("malformed CHAP_I/CHAP_C for mutual CHAP")
                }
                // RFC 7143 §12.1.3: the target MUST NOT answer a challenge equal to its own.
                guard !constantTimeEqual(mutualChallenge, challenge) else {
                    return .failed("reflected CHAP_C")
                }
                guard let mutualUser = credentials.mutualUser, let mutualSecret = credentials.mutualSecret else {
                    return .failed("mutual CHAP requested but no target secret configured")
                }
                guard
                    let answer = algorithm.response(
                        identifier: UInt8(mutualIdentifier), secret: Array(mutualSecret.utf8),
                        challenge: mutualChallenge)
                else {
                    return .failed("digest failure")
                }
                reply.append("CHAP_N", mutualUser)
                reply.append("CHAP_R", BinaryValue.encodeHex(answer))
            }
            state = .authenticated
            return .authenticated(reply)

        case .authenticated:
            return .authenticated(TextParameters())
        }
    }
}

/// RFC 7143 §6.1 numeric values: decimal or `0x` hex, up to 64 bits.
enum NumericValue {
    /// Parses a numeric value; nil when malformed.
    static func parse(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let digits = text.dropFirst(2)
            guard !digits.isEmpty, digits.count <= 16 else { return nil }
            return UInt64(digits, radix: 16)
        }
        guard !text.isEmpty, text.count <= 20, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return UInt64(text)
    }
}
