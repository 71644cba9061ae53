import ISCSIWire
import NIOCore

/// Feeds ``LoginFuzzing``'s requests to a login machine, then to the text
/// negotiator of the session it opened, checking every answer.
struct LoginFuzzDriver {
    /// One request of the input.
    struct Request {
        /// Bit 0 T (login) or F (text), bit 1 C, bits 2-3 CSG, bits 4-5 NSG,
        /// bit 6: a different ISID (login) or the last answer's TTT (text),
        /// bit 7: TSIH 1 (login) or another ITT (text).
        var flags: UInt8
        var text: [UInt8]

        /// Takes one request off the front of `input`; nil when it is used up.
        init?(taking input: inout UnsafeRawBufferPointer.SubSequence) {
            guard let flags = input.first else { return nil }
            input = input.dropFirst()
            let length = input.prefix(2).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            input = input.dropFirst(2)
            self.flags = flags
            self.text = Array(input.prefix(length))
            input = input.dropFirst(length)
        }

        func bit(_ n: Int) -> Bool { flags & (1 << n) != 0 }
    }

    private var login = LoginStateMachine(
        configuration: FuzzLoginConfiguration.configuration, newTSIH: 1, random: FuzzLoginConfiguration.random)
    private var output = TargetOutputCheck()
    private var text: TextNegotiator?
    private var textSegmentLimit = 8192
    private var lastTargetTransferTag: UInt32 = 0xFFFF_FFFF
    /// CHAP_A, CHAP_I and CHAP_C of the last response that challenged.
    private var challenge: (algorithm: CHAPAlgorithm, identifier: UInt8, bytes: [UInt8])?
    private var cmdSN: UInt32 = 1
    private(set) var closed = false

    /// One request; false on an inconsistency.
    mutating func receive(_ request: Request) -> Bool {
        guard Self.reparses(request.text) else { return false }
        if text != nil { return receiveText(request) }
        var pdu = LoginRequestPDU(
            transit: request.bit(0), continue: request.bit(1),
            currentStage: LoginStage(rawValue: (request.flags >> 2) & 3) ?? .securityNegotiation,
            nextStage: LoginStage(rawValue: (request.flags >> 4) & 3) ?? .fullFeaturePhase,
            isid: request.bit(6) ? 0x8000_0000_0002 : 0x8000_0000_0001, tsih: request.bit(7) ? 1 : 0,
            initiatorTaskTag: 7, cmdSN: cmdSN, expStatSN: 0)
        pdu.dataSegment.writeBytes(answeringCHAP(request.text))
        let action = login.receive(pdu)
        guard output.accept(action) else { return false }
        switch action {
        case .send(let response):
            rememberChallenge(response)
            return true
        case .sendAndClose:
            closed = true
            return true
        case .complete(_, let outcome):
            guard Self.inRange(outcome.parameters), Self.mayLogIn(outcome) else { return false }
            let negotiator = TextNegotiator(configuration: FuzzLoginConfiguration.configuration, outcome: outcome)
            text = negotiator
            textSegmentLimit = negotiator.segmentLimit
            output.enterFullFeaturePhase(
                headerDigest: outcome.parameters.headerDigest, dataDigest: outcome.parameters.dataDigest,
                initiatorMaxRecvDataSegmentLength: Int(outcome.parameters.initiatorMaxRecvDataSegmentLength))
            return true
        }
    }

    private mutating func receiveText(_ request: Request) -> Bool {
        var pdu = TextRequestPDU(
            final: request.bit(0), continue: request.bit(1), initiatorTaskTag: request.bit(7) ? 9 : 8,
            targetTransferTag: request.bit(6) ? lastTargetTransferTag : 0xFFFF_FFFF, cmdSN: cmdSN)
        pdu.dataSegment.writeBytes(request.text)
        cmdSN &+= 1
        switch text!.receive(pdu, statSN: 2, expCmdSN: cmdSN, maxCmdSN: cmdSN &+ 16) {
        case .reject:
            return true
        case .send(let response):
            lastTargetTransferTag = response.targetTransferTag
            guard output.accept(.textResponse(response)), response.dataSegment.readableBytes <= textSegmentLimit else {
                return false
            }
            // A long answer is split anywhere; only an answer sent whole must parse (SendTargets repeats keys).
            guard !response.continue, lastTargetTransferTag == 0xFFFF_FFFF || response.final else { return true }
            return (try? TextParameters.parse(Array(response.dataSegment.readableBytesView), allowDuplicateKeys: true))
                != nil
        }
    }

    /// Keeps the CHAP challenge a response carries.
    private mutating func rememberChallenge(_ response: LoginResponsePDU) {
        guard let keys = try? TextParameters.parse(Array(response.dataSegment.readableBytesView)),
            let a = keys["CHAP_A"].flatMap({ UInt8($0) }).flatMap(CHAPAlgorithm.init(rawValue:)),
            let i = keys["CHAP_I"].flatMap({ UInt8($0) }), let c = keys["CHAP_C"].flatMap(Self.hexBytes)
        else { return }
        challenge = (a, i, c)
    }

    /// `text` with `CHAP_R=fuzz` answered for the CHAP target's secret and the last challenge.
    private func answeringCHAP(_ text: [UInt8]) -> [UInt8] {
        guard let challenge, var keys = try? TextParameters.parse(text), keys["CHAP_R"] == "fuzz",
            let secret = FuzzLoginConfiguration.configuration.target(named: FuzzLoginConfiguration.chapTarget)?.chap?
                .secret
        else { return text }
        guard
            let response = challenge.algorithm.response(
                identifier: challenge.identifier, secret: Array(secret.utf8), challenge: challenge.bytes)
        else { return text }
        keys.pairs = keys.pairs.map {
            $0.key == "CHAP_R" ? .init("CHAP_R", "0x" + response.map { String(format2: $0) }.joined()) : $0
        }
        return keys.encoded()
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        let digits = Array(text.utf8.dropFirst(2))
        guard digits.count % 2 == 0, !digits.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Parsing, re-encoding and parsing again gives the same pairs.
    static func reparses(_ text: [UInt8]) -> Bool {
        guard let once = try? TextParameters.parse(text, allowDuplicateKeys: true) else { return true }
        return (try? TextParameters.parse(once.encoded(), allowDuplicateKeys: true)) == once
    }

    /// The negotiated values are within their RFC 7143 §13 ranges.
    static func inRange(_ p: NegotiatedParameters) -> Bool {
        let segment: ClosedRange<UInt32> = 512...16_777_215
        return segment.contains(p.initiatorMaxRecvDataSegmentLength) && segment.contains(p.maxBurstLength)
            && segment.contains(p.firstBurstLength) && p.firstBurstLength <= p.maxBurstLength
            && (1...65535).contains(p.maxOutstandingR2T) && (1...65535).contains(p.maxConnections)
            && p.defaultTime2Wait <= 3600 && p.defaultTime2Retain <= 3600 && p.errorRecoveryLevel == 0
    }

    /// A normal session is to a configured target whose ACL and CHAP the login met.
    static func mayLogIn(_ outcome: LoginOutcome) -> Bool {
        guard outcome.sessionType == .normal else { return outcome.targetName == nil }
        guard let name = outcome.targetName,
            let target = FuzzLoginConfiguration.configuration.target(named: name)
        else { return false }
        guard target.allows(initiator: outcome.initiatorName) else { return false }
        if let chap = target.chap(for: outcome.initiatorName) { return outcome.authenticatedUser == chap.user }
        return true
    }
}

extension String {
    /// Two lowercase hex digits.
    fileprivate init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self.init([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
