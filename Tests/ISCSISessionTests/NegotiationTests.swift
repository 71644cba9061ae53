import Testing

@testable import ISCSISession

@Suite("Operational key negotiation (RFC 7143 §6.2, §13)")
struct NegotiationTests {
    struct Row: Sendable, CustomStringConvertible {
        var line: Int
        var key: String
        var offer: String
        var expected: NegotiationEngine.Answer
        var description: String { "\(key)=\(offer) (line \(line))" }
    }

    /// Every key's merge rule against the default configuration's offers
    /// (InitialR2T=No, ImmediateData=Yes, MaxBurstLength 1 MiB, FirstBurstLength 256 KiB,
    /// MaxOutstandingR2T 16, MaxConnections 1, Time2Wait 2, Time2Retain 20, ERL 0).
    static let rows: [Row] = [
        // list selection: the first of the initiator's values the target supports
        Row(line: #line, key: "HeaderDigest", offer: "None,CRC32C", expected: .answer("None")),
        Row(line: #line, key: "HeaderDigest", offer: "CRC32C,None", expected: .answer("CRC32C")),
        Row(line: #line, key: "DataDigest", offer: "CRC32C", expected: .answer("CRC32C")),
        Row(line: #line, key: "DataDigest", offer: "MD5", expected: .answer("Reject")),
        Row(line: #line, key: "HeaderDigest", offer: "None,,CRC32C", expected: .answer("Reject")),
        Row(line: #line, key: "TaskReporting", offer: "ResponseFence,RFC3720", expected: .answer("RFC3720")),
        // minimum
        Row(line: #line, key: "MaxConnections", offer: "8", expected: .answer("1")),
        Row(line: #line, key: "MaxBurstLength", offer: "262144", expected: .answer("262144")),
        Row(line: #line, key: "MaxBurstLength", offer: "16777215", expected: .answer("1048576")),
        Row(line: #line, key: "FirstBurstLength", offer: "65536", expected: .answer("65536")),
        Row(line: #line, key: "DefaultTime2Retain", offer: "0", expected: .answer("0")),
        Row(line: #line, key: "DefaultTime2Retain", offer: "3600", expected: .answer("20")),
        Row(line: #line, key: "MaxOutstandingR2T", offer: "1", expected: .answer("1")),
        Row(line: #line, key: "MaxOutstandingR2T", offer: "64", expected: .answer("16")),
        Row(line: #line, key: "ErrorRecoveryLevel", offer: "2", expected: .answer("0")),
        Row(line: #line, key: "iSCSIProtocolLevel", offer: "2", expected: .answer("1")),
        // maximum
        Row(line: #line, key: "DefaultTime2Wait", offer: "0", expected: .answer("2")),
        Row(line: #line, key: "DefaultTime2Wait", offer: "10", expected: .answer("10")),
        // OR
        Row(line: #line, key: "InitialR2T", offer: "Yes", expected: .answer("Yes")),
        Row(line: #line, key: "InitialR2T", offer: "No", expected: .answer("No")),
        Row(line: #line, key: "DataPDUInOrder", offer: "No", expected: .answer("Yes")),
        Row(line: #line, key: "DataSequenceInOrder", offer: "No", expected: .answer("Yes")),
        // AND
        Row(line: #line, key: "ImmediateData", offer: "Yes", expected: .answer("Yes")),
        Row(line: #line, key: "ImmediateData", offer: "No", expected: .answer("No")),
        Row(line: #line, key: "IFMarker", offer: "Yes", expected: .answer("No")),
        Row(line: #line, key: "OFMarker", offer: "No", expected: .answer("No")),
        Row(line: #line, key: "OFMarkInt", offer: "2048~8192", expected: .answer("Irrelevant")),
        // declarative: no answer
        Row(line: #line, key: "MaxRecvDataSegmentLength", offer: "65536", expected: .noAnswer),
        // out of range / malformed → Reject
        Row(line: #line, key: "MaxRecvDataSegmentLength", offer: "511", expected: .answer("Reject")),
        Row(line: #line, key: "MaxRecvDataSegmentLength", offer: "16777216", expected: .answer("Reject")),
        Row(line: #line, key: "MaxBurstLength", offer: "abc", expected: .answer("Reject")),
        Row(line: #line, key: "MaxConnections", offer: "0", expected: .answer("Reject")),
        Row(line: #line, key: "DefaultTime2Wait", offer: "3601", expected: .answer("Reject")),
        Row(line: #line, key: "ErrorRecoveryLevel", offer: "3", expected: .answer("Reject")),
        Row(line: #line, key: "InitialR2T", offer: "Maybe", expected: .answer("Reject")),
        // not understood
        Row(line: #line, key: "X-com.example.Foo", offer: "1", expected: .answer("NotUnderstood")),
        Row(line: #line, key: "X#org.example.Bar", offer: "1", expected: .answer("NotUnderstood")),
        Row(line: #line, key: "NoSuchKey", offer: "1", expected: .answer("NotUnderstood")),
        // target-only keys and full-feature-only keys from the initiator
        Row(line: #line, key: "TargetPortalGroupTag", offer: "1", expected: .answer("Reject")),
        Row(line: #line, key: "SendTargets", offer: "All", expected: .answer("Reject")),
    ]

    @Test("merge rules", arguments: rows)
    func mergeRule(_ row: Row) {
        var engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        #expect(engine.negotiate(key: row.key, value: row.offer, discovery: false, leading: true) == row.expected)
    }

    @Test func everyKeyOfTheBriefIsInTheTable() {
        let names = [
            "HeaderDigest", "DataDigest", "MaxConnections", "InitialR2T", "ImmediateData",
            "MaxRecvDataSegmentLength", "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait",
            "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder",
            "ErrorRecoveryLevel", "TargetAlias", "TargetPortalGroupTag", "TargetName", "InitiatorName",
            "InitiatorAlias", "SessionType", "SendTargets", "AuthMethod", "OFMarker", "IFMarker",
        ]
        for name in names { #expect(NegotiationKeys.byName[name] != nil, "\(name)") }
        #expect(NegotiationKeys.byName.count == NegotiationKeys.table.count)
    }

    @Test func sessionKeysAreIrrelevantInDiscovery() {
        var engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        #expect(
            engine.negotiate(key: "InitialR2T", value: "No", discovery: true, leading: true) == .answer("Irrelevant"))
        #expect(
            engine.negotiate(key: "MaxBurstLength", value: "512", discovery: true, leading: true)
                == .answer("Irrelevant"))
        #expect(engine.negotiate(key: "HeaderDigest", value: "None", discovery: true, leading: true) == .answer("None"))
    }

    @Test func keyOfferedTwiceFailsTheLogin() {
        var engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        _ = engine.negotiate(key: "MaxBurstLength", value: "65536", discovery: false, leading: true)
        guard
            case .fail(let status, _) = engine.negotiate(
                key: "MaxBurstLength", value: "65536", discovery: false, leading: true)
        else {
            Issue.record("expected failure")
            return
        }
        #expect(status == .initiatorError)
    }

    @Test func leadingOnlyKeyOnSecondConnectionFails() {
        var engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        guard
            case .fail(let status, _) = engine.negotiate(
                key: "MaxBurstLength", value: "65536", discovery: false, leading: false)
        else {
            Issue.record("expected failure")
            return
        }
        #expect(status == .initiatorError)
        #expect(
            engine.negotiate(key: "HeaderDigest", value: "None", discovery: false, leading: false) == .answer("None"))
    }

    @Test func firstBurstIsClampedToMaxBurst() {
        var engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        _ = engine.negotiate(key: "MaxBurstLength", value: "16384", discovery: false, leading: true)
        #expect(
            engine.negotiate(key: "FirstBurstLength", value: "65536", discovery: false, leading: true)
                == .answer("16384"))
        #expect(engine.parameters().firstBurstLength == 16384)
    }

    @Test func maxRecvDataSegmentLengthBothDirections() {
        var configuration = LoginTestSupport.configuration()
        configuration.maxRecvDataSegmentLength = 131072
        var engine = NegotiationEngine(configuration: configuration)
        #expect(
            engine.negotiate(key: "MaxRecvDataSegmentLength", value: "0x10000", discovery: false, leading: true)
                == .noAnswer)
        let parameters = engine.parameters()
        #expect(parameters.initiatorMaxRecvDataSegmentLength == 65536)
        #expect(parameters.targetMaxRecvDataSegmentLength == 131072)
    }

    @Test func defaultsApplyToKeysNotOffered() {
        let engine = NegotiationEngine(configuration: LoginTestSupport.configuration())
        #expect(
            engine.parameters()
                == {
                    var p = NegotiatedParameters()
                    p.targetMaxRecvDataSegmentLength = 262_144
                    return p
                }())
    }
}
