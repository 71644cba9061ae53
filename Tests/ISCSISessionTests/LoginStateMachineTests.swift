import ISCSIWire
import NIOCore
import Testing

@testable import ISCSISession

private typealias S = LoginTestSupport

@Suite("Login transcripts (RFC 7143 §6, §11.12, §11.13)")
struct LoginStateMachineTests {
    static let operationalOffer: [(String, String)] = [
        ("HeaderDigest", "None,CRC32C"), ("DataDigest", "None"), ("InitialR2T", "No"),
        ("ImmediateData", "Yes"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
        ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "0"), ("MaxOutstandingR2T", "1"),
        ("ErrorRecoveryLevel", "0"), ("IFMarker", "No"), ("OFMarker", "No"), ("MaxConnections", "1"),
        ("MaxRecvDataSegmentLength", "65536"), ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"),
    ]

    /// libiscsi without CHAP: one PDU straight from the operational stage to full feature phase.
    @Test func libiscsiStyleSinglePDULoginWithoutSecurityStage() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 9, random: .repeating([0xab]))
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("SessionType", "Normal")]
                    + Self.operationalOffer))
        guard case .complete(let response, let outcome) = action else {
            Issue.record("expected completion, got \(action)")
            return
        }
        #expect(S.status(response) == .success)
        #expect(response.transit && response.currentStage == .loginOperationalNegotiation)
        #expect(response.nextStage == .fullFeaturePhase)
        #expect(response.tsih == 9)
        #expect(response.isid == 0x8000_0000_1234 && response.initiatorTaskTag == 0x77)
        #expect(response.statSN == 5 && response.expCmdSN == 100 && response.maxCmdSN == 227)
        let text = S.text(response.dataSegment)
        #expect(text["TargetPortalGroupTag"] == "1")
        #expect(text["TargetAlias"] == "lun0")
        #expect(text["HeaderDigest"] == "None")
        #expect(text["InitialR2T"] == "No")
        #expect(text["MaxBurstLength"] == "262144")
        #expect(text["MaxRecvDataSegmentLength"] == "262144")
        #expect(text["IFMarker"] == "No")
        #expect(outcome.sessionType == .normal)
        #expect(outcome.targetName == S.targetName)
        #expect(outcome.initiatorName == S.initiator)
        #expect(outcome.tsih == 9 && outcome.isLeadingConnection)
        #expect(outcome.cid == 1 && outcome.expCmdSN == 100 && outcome.statSN == 6)
        #expect(outcome.parameters.initiatorMaxRecvDataSegmentLength == 65536)
        #expect(outcome.parameters.targetMaxRecvDataSegmentLength == 262144)
        #expect(outcome.parameters.initialR2T == false && outcome.parameters.immediateData)
        #expect(outcome.parameters.defaultTime2Retain == 0)
        #expect(machine.isFinished)
    }

    /// open-iscsi without CHAP: security stage with AuthMethod=None, then operational stage.
    @Test func fullLoginWithAuthMethodNone() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 3, random: .repeating([0xab]))
        let first = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [
                    ("InitiatorName", S.initiator), ("InitiatorAlias", "host"), ("SessionType", "Normal"),
                    ("TargetName", S.targetName), ("AuthMethod", "None"),
                ]))
        guard case .send(let r1) = first else {
            Issue.record("expected send, got \(first)")
            return
        }
        #expect(r1.transit && r1.currentStage == .securityNegotiation && r1.nextStage == .loginOperationalNegotiation)
        #expect(r1.tsih == 0)  // RFC 7143 §11.13.4: only in the final response.
        #expect(S.text(r1.dataSegment)["AuthMethod"] == "None")
        #expect(S.text(r1.dataSegment)["TargetPortalGroupTag"] == "1")

        let second = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C"), ("X-com.example.Vendor", "1")]))
        guard case .complete(let r2, let outcome) = second else {
            Issue.record("expected completion, got \(second)")
            return
        }
        let text = S.text(r2.dataSegment)
        #expect(text["X-com.example.Vendor"] == "NotUnderstood")
        #expect(text["TargetPortalGroupTag"] == nil)
        #expect(r2.statSN == r1.statSN &+ 1 && r2.tsih == 3)
        #expect(outcome.parameters.headerDigest && outcome.parameters.dataDigest)
        #expect(outcome.initiatorAlias == "host")
        // Keys not offered keep RFC defaults.
        #expect(outcome.parameters.initialR2T && outcome.parameters.maxBurstLength == 262144)
    }

    /// Drives a CHAP login like libiscsi: AuthMethod offer, CHAP_A, then CHAP_N/CHAP_R.
    func chapLogin(
        algorithmOffer: String, secret: String, mutual: (id: UInt8, challenge: [UInt8])? = nil,
        credentials: CHAPCredentials
    ) -> (LoginStateMachine, [LoginAction]) {
        var machine = LoginStateMachine(
            configuration: S.configuration(chap: credentials), newTSIH: 4, random: .repeating([0xab]))
        var actions: [LoginAction] = []
        actions.append(
            machine.receive(
                S.request(
                    .securityNegotiation, .loginOperationalNegotiation, transit: true,
                    [
                        ("InitiatorName", S.initiator), ("TargetName", S.targetName), ("SessionType", "Normal"),
                        ("AuthMethod", "CHAP,None"),
                    ])))
        actions.append(
            machine.receive(
                S.request(
                    .securityNegotiation, .loginOperationalNegotiation, transit: false, [("CHAP_A", algorithmOffer)])))
        let challengeText = S.text(actions[1].response.dataSegment)
        let algorithm = CHAPAlgorithm(rawValue: UInt8(challengeText["CHAP_A"] ?? "") ?? 0) ?? .md5
        let id = UInt8(challengeText["CHAP_I"] ?? "") ?? 0
        let challenge = challengeText["CHAP_C"].flatMap { BinaryValue.decode($0) } ?? []
        let response = algorithm.response(identifier: id, secret: Array(secret.utf8), challenge: challenge) ?? []
        var pairs = [("CHAP_N", "alice"), ("CHAP_R", BinaryValue.encodeHex(response))]
        if let mutual {
            pairs += [("CHAP_I", String(mutual.id)), ("CHAP_C", BinaryValue.encodeHex(mutual.challenge))]
        }
        actions.append(
            machine.receive(S.request(.securityNegotiation, .loginOperationalNegotiation, transit: true, pairs)))
        return (machine, actions)
    }

    @Test("one-way CHAP", arguments: [("5", CHAPAlgorithm.md5), ("7", .sha256), ("7,5", .sha256), ("5,7", .md5)])
    func oneWayCHAP(_ offer: String, _ expected: CHAPAlgorithm) {
        let credentials = CHAPCredentials(user: "alice", secret: "initiator-secret")
        var (machine, actions) = chapLogin(algorithmOffer: offer, secret: "initiator-secret", credentials: credentials)
        #expect(S.text(actions[0].response.dataSegment)["AuthMethod"] == "CHAP")
        #expect(!actions[0].response.transit)  // cannot leave security before authenticating
        let challenge = S.text(actions[1].response.dataSegment)
        #expect(challenge["CHAP_A"] == String(expected.rawValue))
        #expect(challenge["CHAP_I"] == "171")  // injected 0xab
        #expect(challenge["CHAP_C"] == "0x" + String(repeating: "ab", count: expected.digestLength))
        guard case .send(let accepted) = actions[2] else {
            Issue.record("expected send, got \(actions[2])")
            return
        }
        #expect(S.status(accepted) == .success && accepted.transit)
        #expect(accepted.nextStage == .loginOperationalNegotiation)
        #expect(S.text(accepted.dataSegment).isEmpty)
        let done = machine.receive(
            S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: true, Self.operationalOffer))
        #expect(done.outcome?.authenticatedUser == "alice")
    }

    /// The response the initiator must compute for the known challenge, checked against an
    /// independently computed RFC 1994 vector (see CHAPTests).
    @Test func chapChallengeMatchesKnownVector() {
        let credentials = CHAPCredentials(user: "alice", secret: "initiator-secret")
        var machine = LoginStateMachine(
            configuration: S.configuration(chap: credentials), newTSIH: 4, random: .repeating([0xab]))
        _ = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: false,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("AuthMethod", "CHAP")]))
        _ = machine.receive(
            S.request(.securityNegotiation, .loginOperationalNegotiation, transit: false, [("CHAP_A", "5")]))
        let action = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [("CHAP_N", "alice"), ("CHAP_R", "0x" + CHAPTests.md5Vector.uppercased())]))
        #expect(S.status(action.response) == .success && action.response.transit)
    }

    @Test("mutual CHAP", arguments: [("5", CHAPTests.mutualMD5Vector, 16), ("7", CHAPTests.mutualSHA256Vector, 32)])
    func mutualCHAP(_ offer: String, _ vector: String, _ length: Int) {
        let credentials = CHAPCredentials(
            user: "alice", secret: "initiator-secret", mutualUser: "target-user", mutualSecret: "target-secret-1")
        let (_, actions) = chapLogin(
            algorithmOffer: offer, secret: "initiator-secret", mutual: (7, Array(1...UInt8(length))),
            credentials: credentials)
        let text = S.text(actions[2].response.dataSegment)
        #expect(S.status(actions[2].response) == .success)
        #expect(text["CHAP_N"] == "target-user")
        #expect(text["CHAP_R"] == "0x" + vector)
    }

    @Test func mutualCHAPWithoutTargetSecretFails() {
        let credentials = CHAPCredentials(user: "alice", secret: "initiator-secret")
        let (_, actions) = chapLogin(
            algorithmOffer: "5", secret: "initiator-secret", mutual: (7, Array(1...16)), credentials: credentials)
        #expect(S.status(actions[2].response) == .authenticationFailure)
        #expect(actions[2].closes)
    }

    @Test func wrongSecretFailsWith0201() {
        let credentials = CHAPCredentials(user: "alice", secret: "initiator-secret")
        let (machine, actions) = chapLogin(algorithmOffer: "5", secret: "wrong", credentials: credentials)
        #expect(S.status(actions[2].response) == .authenticationFailure)
        #expect(S.status(actions[2].response).description == "0x0201")
        #expect(actions[2].closes && machine.isFinished)
    }

    @Test func skippingSecurityWhenCHAPRequiredFailsWith0201() {
        var machine = LoginStateMachine(
            configuration: S.configuration(chap: CHAPCredentials(user: "alice", secret: "s")), newTSIH: 1)
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]))
        #expect(S.status(action.response) == .authenticationFailure && action.closes)
    }

    @Test func authMethodNoneWhenCHAPRequiredFails() {
        var machine = LoginStateMachine(
            configuration: S.configuration(chap: CHAPCredentials(user: "alice", secret: "s")), newTSIH: 1)
        let action = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("AuthMethod", "None")]))
        #expect(S.status(action.response) == .authenticationFailure && action.closes)
    }

    struct Failure: Sendable, CustomStringConvertible {
        var line: Int
        var request: LoginRequestPDU
        var status: LoginStatus
        var description: String { "line \(line) → \(status)" }
    }

    static let failures: [Failure] = [
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, [("TargetName", S.targetName)]),
            status: .missingParameter),
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, [("InitiatorName", S.initiator)]),
            status: .missingParameter),
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", "iqn.2026-01.tessera:nope")]),
            status: .notFound),
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.otherTarget)]),
            status: .authorizationFailure),
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("SessionType", "Weird")]),
            status: .sessionTypeNotSupported),
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, versionMin: 1,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]),
            status: .unsupportedVersion),
        // T and C together
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, continue: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]),
            status: .initiatorError),
        // NSG not after CSG
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .securityNegotiation, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]),
            status: .initiatorError),
        // CSG full feature phase
        Failure(
            line: #line,
            request: S.request(
                .fullFeaturePhase, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]),
            status: .initiatorError),
        // security key in the operational stage
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("AuthMethod", "None")]),
            status: .initiatorError),
        // leading-only key on a connection added to a session
        Failure(
            line: #line,
            request: S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, tsih: 5,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("MaxBurstLength", "512")]),
            status: .initiatorError),
        // FirstBurstLength above MaxBurstLength cannot arise from our answers, but a
        // malformed text can: a duplicate key.
        Failure(
            line: #line,
            request: LoginRequestPDU(
                transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase,
                dataSegment: S.buffer(Array("InitiatorName=a\0InitiatorName=a\0".utf8))),
            status: .initiatorError),
    ]

    @Test("login failures", arguments: failures)
    func failure(_ failure: Failure) {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 1, random: .repeating([1]))
        let action = machine.receive(failure.request)
        #expect(action.closes)
        #expect(S.status(action.response) == failure.status)
        #expect(action.response.dataSegment.readableBytes == 0)
        #expect(machine.isFinished)
        #expect(machine.lastFailureReason != nil)
    }

    @Test func aclAllowsListedInitiatorCaseInsensitively() {
        var machine = LoginStateMachine(
            configuration: S.configuration(acl: [S.initiator.uppercased()]), newTSIH: 1)
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]))
        #expect(action.outcome != nil)
    }

    @Test func discoverySessionNeedsNoTargetName() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 2)
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [
                    ("InitiatorName", S.initiator), ("SessionType", "Discovery"), ("InitialR2T", "No"),
                    ("HeaderDigest", "None"),
                ]))
        guard case .complete(let response, let outcome) = action else {
            Issue.record("expected completion, got \(action)")
            return
        }
        #expect(outcome.sessionType == .discovery && outcome.targetName == nil)
        let text = S.text(response.dataSegment)
        #expect(text["InitialR2T"] == "Irrelevant")
        #expect(text["TargetPortalGroupTag"] == nil)
    }

    @Test func discoveryCHAPIsRequiredWhenConfigured() {
        var machine = LoginStateMachine(
            configuration: S.configuration(discoveryCHAP: CHAPCredentials(user: "d", secret: "s")), newTSIH: 2)
        let action = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [("InitiatorName", S.initiator), ("SessionType", "Discovery"), ("AuthMethod", "CHAP,None")]))
        #expect(S.text(action.response.dataSegment)["AuthMethod"] == "CHAP")
        #expect(!action.closes)
    }

    @Test func continuedTextIsReassembled() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        var whole = TextParameters()
        whole.append("InitiatorName", S.initiator)
        whole.append("TargetName", S.targetName)
        whole.append("MaxRecvDataSegmentLength", "16384")
        let bytes = whole.encoded()
        let split = 20  // inside the first pair
        var first = S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: false, continue: true)
        first.dataSegment = S.buffer(Array(bytes[..<split]))
        var second = S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: true)
        second.dataSegment = S.buffer(Array(bytes[split...]))

        let partial = machine.receive(first)
        guard case .send(let empty) = partial else {
            Issue.record("expected send, got \(partial)")
            return
        }
        #expect(empty.dataSegment.readableBytes == 0 && !empty.transit && S.status(empty) == .success)
        let done = machine.receive(second)
        #expect(done.outcome?.parameters.initiatorMaxRecvDataSegmentLength == 16384)
        #expect(done.response.statSN == empty.statSN &+ 1)
    }

    @Test func keyOf64KiBIsRefusedWithoutCrash() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        let huge = [UInt8](repeating: UInt8(ascii: "K"), count: 65536) + Array("=v\0".utf8)
        // Fed in 8 KiB continued PDUs, as a hostile initiator would.
        var last: LoginAction?
        var offset = 0
        while offset < huge.count, last?.closes != true {
            let end = min(offset + 8192, huge.count)
            var pdu = S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: end == huge.count,
                continue: end < huge.count)
            pdu.dataSegment = S.buffer(Array(huge[offset..<end]))
            last = machine.receive(pdu)
            offset = end
        }
        #expect(last?.closes == true)
        #expect(last.map { S.status($0.response) } == .initiatorError)
    }

    @Test func tooManyLoginPDUsClose() {
        var configuration = S.configuration()
        configuration.maxLoginPDUs = 4
        var machine = LoginStateMachine(configuration: configuration, newTSIH: 8)
        var actions: [LoginAction] = []
        actions.append(
            machine.receive(
                S.request(
                    .securityNegotiation, .loginOperationalNegotiation, transit: false,
                    [("InitiatorName", S.initiator), ("TargetName", S.targetName)])))
        for _ in 0..<4 {
            actions.append(
                machine.receive(S.request(.securityNegotiation, .loginOperationalNegotiation, transit: false)))
        }
        #expect(actions.prefix(4).allSatisfy { !$0.closes })
        #expect(actions[4].closes && S.status(actions[4].response) == .initiatorError)
    }

    @Test func changedISIDFails() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        _ = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: false,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]))
        var next = S.request(.securityNegotiation, .loginOperationalNegotiation, transit: true)
        next.isid = 1
        #expect(machine.receive(next).closes)
    }

    @Test func addingAConnectionIsReportedNotDecided() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true, tsih: 42,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("HeaderDigest", "None")]))
        #expect(action.outcome?.isLeadingConnection == false)
        #expect(action.outcome?.tsih == 42 && action.response.tsih == 42)
        let refused = LoginResponsePDU.loginFailure(replacing: action.response, status: .sessionDoesNotExist)
        #expect(S.status(refused) == .sessionDoesNotExist && !refused.transit)
        #expect(refused.dataSegment.readableBytes == 0 && refused.initiatorTaskTag == 0x77)
    }

    @Test func libiscsiRepeatedDeclarationsInOperationalStageAreAccepted() {
        let credentials = CHAPCredentials(user: "alice", secret: "initiator-secret")
        var (machine, actions) = chapLogin(algorithmOffer: "5", secret: "initiator-secret", credentials: credentials)
        #expect(actions[2].response.transit)
        let done = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("SessionType", "Normal")]
                    + Self.operationalOffer))
        #expect(done.outcome != nil, "\(machine.lastFailureReason ?? "")")
    }

    @Test func loginRequestAfterCompletionIsRefused() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        _ = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName)]))
        #expect(machine.receive(S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: true)).closes)
    }

    @Test func floodOfUnknownKeysIsRefusedNotOverflowing() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 8)
        var pairs = [("InitiatorName", S.initiator), ("TargetName", S.targetName)]
        for index in 0..<400 { pairs.append(("X-com.example.k\(index)-" + String(repeating: "p", count: 30), "1")) }
        var request = S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: true)
        var text = TextParameters()
        for (key, value) in pairs { text.append(key, value) }
        request.dataSegment = S.buffer(text.encoded())
        let action = machine.receive(request)
        #expect(action.closes && S.status(action.response) == .initiatorError)
    }

    /// open-iscsi discovery with default digests and MaxRecvDataSegmentLength goes from the
    /// security stage straight to full feature phase (CSG=0, NSG=3).
    @Test func openISCSIStyleDiscoveryStraightToFullFeature() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 6)
        let action = machine.receive(
            S.request(
                .securityNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", S.initiator), ("SessionType", "Discovery"), ("AuthMethod", "None")]))
        guard case .complete(let response, let outcome) = action else {
            Issue.record("expected completion, got \(action)")
            return
        }
        #expect(response.currentStage == .securityNegotiation && response.nextStage == .fullFeaturePhase)
        #expect(S.text(response.dataSegment).pairs == [.init("AuthMethod", "None")])
        #expect(outcome.sessionType == .discovery && outcome.tsih == 6)
        // Nothing was declared: both directions keep the 8192-byte default.
        #expect(outcome.parameters.targetMaxRecvDataSegmentLength == 8192)
        #expect(outcome.parameters.initiatorMaxRecvDataSegmentLength == 8192)
    }

    /// open-iscsi's operational offer for a normal session: every answer must be a key it knows.
    @Test func openISCSIStyleOperationalAnswersOnlyKnownKeys() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 6)
        _ = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [
                    ("InitiatorName", S.initiator), ("InitiatorAlias", "node"), ("TargetName", S.targetName),
                    ("SessionType", "Normal"), ("AuthMethod", "None"),
                ]))
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [
                    ("HeaderDigest", "None"), ("DataDigest", "None"), ("DefaultTime2Wait", "2"),
                    ("DefaultTime2Retain", "0"), ("IFMarker", "No"), ("OFMarker", "No"), ("ErrorRecoveryLevel", "0"),
                    ("InitialR2T", "No"), ("ImmediateData", "Yes"), ("MaxBurstLength", "16776192"),
                    ("FirstBurstLength", "262144"), ("MaxOutstandingR2T", "1"), ("MaxConnections", "1"),
                    ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"), ("MaxRecvDataSegmentLength", "262144"),
                ]))
        let text = S.text(action.response.dataSegment)
        let known: Set<String> = [
            "TargetAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData",
            "MaxRecvDataSegmentLength", "FirstBurstLength", "MaxBurstLength", "HeaderDigest", "DataDigest",
            "DefaultTime2Wait", "DefaultTime2Retain", "OFMarker", "IFMarker", "OFMarkInt", "IFMarkInt",
            "DataPDUInOrder", "DataSequenceInOrder", "MaxOutstandingR2T", "MaxConnections", "ErrorRecoveryLevel",
        ]
        #expect(text.pairs.allSatisfy { known.contains($0.key) })
        // open-iscsi refuses anything but these exact answers.
        #expect(text["MaxOutstandingR2T"] == "1" && text["MaxConnections"] == "1")
        #expect(text["ErrorRecoveryLevel"] == "0" && text["HeaderDigest"] == "None")
        let parameters = action.outcome?.parameters
        #expect(parameters?.maxBurstLength == 1_048_576 && parameters?.firstBurstLength == 262_144)
        #expect(parameters?.initiatorMaxRecvDataSegmentLength == 262_144)
    }

    @Test func initiatorOfferingOnlyCHAPToATargetWithoutCHAPFails() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 6)
        let action = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("AuthMethod", "CHAP")]))
        #expect(action.closes && S.status(action.response) == .authenticationFailure)
    }

    @Test func changedDeclarationFails() {
        var machine = LoginStateMachine(configuration: S.configuration(), newTSIH: 6)
        _ = machine.receive(
            S.request(
                .securityNegotiation, .loginOperationalNegotiation, transit: true,
                [("InitiatorName", S.initiator), ("TargetName", S.targetName), ("AuthMethod", "None")]))
        let action = machine.receive(
            S.request(.loginOperationalNegotiation, .fullFeaturePhase, transit: true, [("InitiatorName", "iqn.other")]))
        #expect(action.closes && S.status(action.response) == .initiatorError)
    }
}
