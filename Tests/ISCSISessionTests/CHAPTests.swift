import Testing

@testable import ISCSISession

/// Expected digests below were computed outside this code base from the RFC 1994
/// formula H(CHAP_I || secret || CHAP_C), e.g. with Python's hashlib:
/// `hashlib.md5(bytes([0xab]) + b"initiator-secret" + bytes([0xab]*16)).hexdigest()`.
@Suite("CHAP digests and exchange (RFC 1994, RFC 7143 §12.1.3)")
struct CHAPTests {
    static let md5Vector = "1bc0d9b30e54d41df4eea64b9a564db5"
    static let sha256Vector = "d81fcd420c80daab93f050a4eece6e12458941ded22a735a6d77d3ca30832fac"
    static let mutualMD5Vector = "85236a66377813289b20c0bffe1faff7"
    static let mutualSHA256Vector = "805877bf743269f928b11af6bf69ea3c387770b7f821a8913c91042c979358a1"

    @Test(
        "digest vectors",
        arguments: [
            (CHAPAlgorithm.md5, UInt8(0xab), "initiator-secret", [UInt8](repeating: 0xab, count: 16), md5Vector),
            (.sha256, 0xab, "initiator-secret", [UInt8](repeating: 0xab, count: 32), sha256Vector),
            (.md5, 7, "target-secret-1", Array(1...16), mutualMD5Vector),
            (.sha256, 7, "target-secret-1", Array(1...32), mutualSHA256Vector),
        ])
    func digest(_ algorithm: CHAPAlgorithm, _ id: UInt8, _ secret: String, _ challenge: [UInt8], _ hex: String) {
        let response = algorithm.response(identifier: id, secret: Array(secret.utf8), challenge: challenge)
        #expect(response == LoginTestSupport.hex(hex))
        #expect(response?.count == algorithm.digestLength)
    }

    @Test func constantTimeCompare() {
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test func productionRandomnessGivesTheRequestedLength() {
        let bytes = LoginRandomSource.openSSL.bytes(32)
        #expect(bytes.count == 32)
        #expect(bytes != LoginRandomSource.openSSL.bytes(32))
    }

    static let credentials = CHAPCredentials(
        user: "alice", secret: "initiator-secret", mutualUser: "target-user", mutualSecret: "target-secret-1")

    @Test func unsupportedAlgorithmFails() {
        var chap = CHAPAuthenticator(credentials: Self.credentials)
        var keys = TextParameters()
        keys.append("CHAP_A", "6,99")
        guard case .failed = chap.receive(keys, random: .repeating([0xab])) else {
            Issue.record("expected failure")
            return
        }
    }

    @Test func reflectedChallengeIsRefused() {
        var chap = CHAPAuthenticator(credentials: Self.credentials)
        var keys = TextParameters()
        keys.append("CHAP_A", "5")
        _ = chap.receive(keys, random: .repeating([0xab]))
        var answer = TextParameters()
        answer.append("CHAP_N", "alice")
        answer.append("CHAP_R", "0x" + Self.md5Vector)
        answer.append("CHAP_I", "1")
        answer.append("CHAP_C", "0x" + String(repeating: "ab", count: 16))
        guard case .failed(let reason) = chap.receive(answer, random: .repeating([0xab])) else {
            Issue.record("expected failure")
            return
        }
        #expect(reason.contains("reflected"))
    }

    @Test func base64ResponseIsAccepted() {
        var chap = CHAPAuthenticator(credentials: Self.credentials)
        var keys = TextParameters()
        keys.append("CHAP_A", "5")
        _ = chap.receive(keys, random: .repeating([0xab]))
        var answer = TextParameters()
        answer.append("CHAP_N", "alice")
        // base64 of 1bc0d9b30e54d41df4eea64b9a564db5
        answer.append("CHAP_R", "0bG8DZsw5U1B307qZLmlZNtQ==")
        #expect(chap.receive(answer, random: .repeating([0xab])) == .authenticated(TextParameters()))
    }
}
