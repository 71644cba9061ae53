import ISCSIWire
import NIOCore
import Testing

@testable import ISCSISession

private typealias S = LoginTestSupport

@Suite("Text requests: SendTargets and continuation (RFC 7143 §11.10, §11.11, §13.3)")
struct TextNegotiatorTests {
    static func request(
        _ pairs: [(String, String)] = [], itt: UInt32 = 9, ttt: UInt32 = 0xffff_ffff, final: Bool = true,
        continue more: Bool = false
    ) -> TextRequestPDU {
        TextRequestPDU(
            immediate: true, final: final, continue: more, initiatorTaskTag: itt, targetTransferTag: ttt, cmdSN: 1,
            expStatSN: 1, dataSegment: S.buffer(pairs))
    }

    static func sent(_ action: TextAction) -> TextResponsePDU? {
        if case .send(let pdu) = action { return pdu }
        return nil
    }

    @Test func discoverySendTargetsAllListsVisibleTargetsWithEveryAddress() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .discovery, initiatorName: S.initiator, targetName: nil,
            initiatorMaxRecvDataSegmentLength: 8192)
        let action = negotiator.receive(Self.request([("SendTargets", "All")]), statSN: 7, expCmdSN: 2, maxCmdSN: 9)
        guard let response = Self.sent(action) else {
            Issue.record("expected send, got \(action)")
            return
        }
        #expect(response.final && !response.continue && response.targetTransferTag == 0xffff_ffff)
        #expect(response.statSN == 7 && response.expCmdSN == 2 && response.maxCmdSN == 9)
        #expect(response.initiatorTaskTag == 9)
        // The private target's ACL excludes this initiator: it is not listed.
        let bytes = Array(response.dataSegment.readableBytesView)
        #expect(
            bytes
                == Array(
                    "TargetName=\(S.targetName)\0TargetAddress=127.0.0.1:3260,1\0TargetAddress=127.0.0.2:3260,2\0"
                        .utf8))
    }

    @Test func aclPermittedInitiatorSeesPrivateTarget() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .discovery, initiatorName: "iqn.2026-01.test:someone-else",
            targetName: nil, initiatorMaxRecvDataSegmentLength: 8192)
        let response = Self.sent(
            negotiator.receive(Self.request([("SendTargets", "All")]), statSN: 0, expCmdSN: 0, maxCmdSN: 0))
        let text = String(
            decoding: response?.dataSegment.readableBytesView ?? ByteBuffer().readableBytesView, as: UTF8.self)
        #expect(text.contains("TargetName=\(S.otherTarget)\0TargetAddress=127.0.0.1:3260,1\0"))
        #expect(text.contains("TargetName=\(S.targetName)\0"))
    }

    @Test(
        "SendTargets values",
        arguments: [
            (LoginSessionType.discovery, S.targetName, [S.targetName]),
            (.discovery, S.targetName.uppercased(), [S.targetName]),
            (.discovery, S.otherTarget, []),  // hidden by ACL
            (.discovery, "iqn.2026-01.tessera:nosuch", []),
            (.discovery, "", []),
            (.normal, "All", [S.targetName]),
            (.normal, "", [S.targetName]),
            (.normal, S.targetName, [S.targetName]),
            (.normal, S.otherTarget, []),
        ])
    func sendTargetsValues(_ type: LoginSessionType, _ value: String, _ names: [String]) {
        let text = DiscoverySendTargets.answer(
            value: value, configuration: S.configuration(), sessionType: type, initiatorName: S.initiator,
            sessionTargetName: type == .normal ? S.targetName : nil)
        #expect(text.pairs.filter { $0.key == "TargetName" }.map(\.value) == names)
        #expect(text["SendTargets"] == nil)
    }

    /// libiscsi iSCSISendTargets.Invalid: a value that is neither All, empty nor an iSCSI name.
    @Test(arguments: [LoginSessionType.discovery, .normal], ["Alle", "A", "all", "ALL", "iqn.", "iqn.20x6-01.x", "eui.12"])
    func invalidSendTargetsValueIsAnsweredReject(_ type: LoginSessionType, _ value: String) {
        let text = DiscoverySendTargets.answer(
            value: value, configuration: S.configuration(), sessionType: type, initiatorName: S.initiator,
            sessionTargetName: type == .normal ? S.targetName : nil)
        #expect(text.encoded() == Array("SendTargets=Reject\0".utf8))
    }

    /// Every Text Request in full-feature phase of a normal session gets one Text
    /// Response; its text, byte for byte (libiscsi iSCSISendTargets.Invalid and .Simple).
    @Test(arguments: [
        (#line, "SendTargetsPlease=All", "SendTargetsPlease=NotUnderstood\0"),
        (#line, "SendTargets=Alle", "SendTargets=Reject\0"),
        (#line, "SendTargets=A", "SendTargets=Reject\0"),
        (#line, "sENDtARGETS=aLL", "sENDtARGETS=NotUnderstood\0"),
        (#line, "SendTargets=All", Self.ownRecord),
        (#line, "SendTargets=", Self.ownRecord),
        (#line, "SendTargets=\(S.targetName)", Self.ownRecord),
        (#line, "SendTargets=\(Self.publicTarget)", "TargetName=\(Self.publicTarget)\0TargetAddress=127.0.0.3:3260,1\0"),
        (#line, "SendTargets=\(S.otherTarget)", ""),
        (#line, "SendTargets=iqn.2026-01.tessera:nosuch", ""),
        (#line, "MaxRecvDataSegmentLength=65536", "MaxRecvDataSegmentLength=Reject\0"),
    ])
    func fullFeatureTextIsAnsweredByteForByte(line: Int, request text: String, answer expected: String) throws {
        var configuration = S.configuration()
        configuration.targets.append(
            TargetDescription(name: Self.publicTarget, sendTargetsAddresses: ["127.0.0.3:3260"]))
        var negotiator = TextNegotiator(
            configuration: configuration, sessionType: .normal, initiatorName: S.initiator,
            targetName: S.targetName, initiatorMaxRecvDataSegmentLength: 8192)
        // As libiscsi sends it: the text and one terminating null.
        var request = Self.request(itt: 0x31)
        request.dataSegment = S.buffer(Array(text.utf8) + [0])
        let action = negotiator.receive(request, statSN: 7, expCmdSN: 2, maxCmdSN: 9)
        let response = try #require(Self.sent(action), "line \(line): \(action)")
        #expect(response.final && !response.continue && response.targetTransferTag == 0xffff_ffff, "line \(line)")
        #expect(response.initiatorTaskTag == 0x31 && response.statSN == 7, "line \(line)")
        #expect(Array(response.dataSegment.readableBytesView) == Array(expected.utf8), "line \(line)")
    }

    static let publicTarget = "iqn.2026-01.tessera:public"
    static let ownRecord =
        "TargetName=\(S.targetName)\0TargetAddress=127.0.0.1:3260,1\0TargetAddress=127.0.0.2:3260,2\0"

    @Test(arguments: [
        ("iqn.2026-01.tessera:lun0", true), ("iqn.2026-01", true), ("IQN.2026-01.Example.COM:Disk", true),
        ("eui.02004567A425678D", true), ("naa.52004567BA64678D", true),
        ("naa.62004567BA64678D0123456789ABCDEF", true), ("iqn.2026-1.x", false), ("iqn.2026-01x", false),
        ("eui.0200", false), ("naa.52004567BA64678DAB", false), ("iqn.2026-01.a b", false), ("All", false),
        ("", false), ("iqn.2026-01." + String(repeating: "a", count: 212), false),
    ])
    func iSCSINameShape(_ name: String, _ wellFormed: Bool) {
        #expect(ISCSIName.isWellFormed(name) == wellFormed, "\(name)")
    }

    @Test func longAnswerIsSplitWithContinueAndTargetTransferTag() {
        var configuration = S.configuration()
        configuration.targets = (0..<40).map {
            TargetDescription(
                name: "iqn.2026-01.tessera:target-\($0)", sendTargetsAddresses: ["127.0.0.\($0 % 200 + 1):3260,1"])
        }
        var negotiator = TextNegotiator(
            configuration: configuration, sessionType: .discovery, initiatorName: S.initiator, targetName: nil,
            initiatorMaxRecvDataSegmentLength: 512)
        var collected: [UInt8] = []
        guard
            let first = Self.sent(
                negotiator.receive(Self.request([("SendTargets", "All")]), statSN: 1, expCmdSN: 1, maxCmdSN: 1))
        else {
            Issue.record("no response")
            return
        }
        #expect(first.continue && !first.final && first.targetTransferTag != 0xffff_ffff)
        #expect(first.dataSegment.readableBytes == 512)
        collected += first.dataSegment.readableBytesView
        var ttt = first.targetTransferTag
        var rounds = 0
        while rounds < 100 {
            rounds += 1
            guard let next = Self.sent(negotiator.receive(Self.request(ttt: ttt), statSN: 1, expCmdSN: 1, maxCmdSN: 1))
            else {
                Issue.record("continuation refused")
                return
            }
            collected += next.dataSegment.readableBytesView
            if next.final {
                #expect(!next.continue && next.targetTransferTag == 0xffff_ffff)
                break
            }
            #expect(next.continue)
            ttt = next.targetTransferTag
        }
        let text =
            (try? TextParameters.parse(collected, maxTotalLength: 1 << 20, allowDuplicateKeys: true))
            ?? TextParameters()
        #expect(text.pairs.filter { $0.key == "TargetName" }.count == 40)
    }

    @Test func continuedRequestIsReassembled() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .discovery, initiatorName: S.initiator, targetName: nil,
            initiatorMaxRecvDataSegmentLength: 8192)
        let bytes = Array("SendTargets=All\0".utf8)
        var first = Self.request(final: false, continue: true)
        first.dataSegment = S.buffer(Array(bytes[..<5]))
        guard let ack = Self.sent(negotiator.receive(first, statSN: 1, expCmdSN: 1, maxCmdSN: 1)) else {
            Issue.record("no ack")
            return
        }
        #expect(!ack.final && ack.dataSegment.readableBytes == 0 && ack.targetTransferTag != 0xffff_ffff)
        var second = Self.request(ttt: ack.targetTransferTag)
        second.dataSegment = S.buffer(Array(bytes[5...]))
        let answer = Self.sent(negotiator.receive(second, statSN: 2, expCmdSN: 1, maxCmdSN: 1))
        #expect(answer?.final == true)
        #expect(
            answer.map { String(decoding: $0.dataSegment.readableBytesView, as: UTF8.self) }?.hasPrefix("TargetName=")
                == true)
    }

    @Test func otherKeysInFullFeaturePhase() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .normal, initiatorName: S.initiator,
            targetName: S.targetName,
            initiatorMaxRecvDataSegmentLength: 8192)
        let response = Self.sent(
            negotiator.receive(
                Self.request([("X-com.example.Thing", "1"), ("MaxBurstLength", "512")]), statSN: 1, expCmdSN: 1,
                maxCmdSN: 1))
        let text = response.map { S.text($0.dataSegment) }
        #expect(text?["X-com.example.Thing"] == "NotUnderstood")
        #expect(text?["MaxBurstLength"] == "Reject")
    }

    @Test func unknownTargetTransferTagIsRejected() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .discovery, initiatorName: S.initiator, targetName: nil,
            initiatorMaxRecvDataSegmentLength: 8192)
        #expect(
            negotiator.receive(Self.request(ttt: 1234), statSN: 1, expCmdSN: 1, maxCmdSN: 1) == .reject(reason: 0x09))
    }

    @Test func duplicateKeysAndBothFlagsAreRejected() {
        var negotiator = TextNegotiator(
            configuration: S.configuration(), sessionType: .discovery, initiatorName: S.initiator, targetName: nil,
            initiatorMaxRecvDataSegmentLength: 8192)
        var duplicate = Self.request()
        duplicate.dataSegment = S.buffer(Array("SendTargets=All\0SendTargets=All\0".utf8))
        #expect(negotiator.receive(duplicate, statSN: 1, expCmdSN: 1, maxCmdSN: 1) == .reject(reason: 0x04))
        #expect(
            negotiator.receive(Self.request(final: true, continue: true), statSN: 1, expCmdSN: 1, maxCmdSN: 1)
                == .reject(reason: 0x04))
    }

    @Test func outcomeInitializerUsesInitiatorLimit() {
        var parameters = NegotiatedParameters()
        parameters.initiatorMaxRecvDataSegmentLength = 1024
        let outcome = LoginOutcome(
            sessionType: .discovery, initiatorName: S.initiator, isid: 1, tsih: 1, cid: 0, expCmdSN: 0, statSN: 0,
            parameters: parameters)
        let negotiator = TextNegotiator(configuration: S.configuration(), outcome: outcome)
        #expect(negotiator.segmentLimit == 1024)
    }
}
