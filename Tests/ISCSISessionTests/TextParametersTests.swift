import Testing

@testable import ISCSISession

@Suite("TextParameters codec (RFC 7143 §6.1)")
struct TextParametersTests {
    @Test(
        "round trip keeps order",
        arguments: [
            [("InitiatorName", "iqn.x"), ("SessionType", "Normal"), ("HeaderDigest", "None,CRC32C")],
            [("X-com.example.Key", "")],
            [("MaxRecvDataSegmentLength", "262144")],
        ])
    func roundTrip(_ pairs: [(String, String)]) throws {
        let text = TextParameters(pairs.map { TextParameters.Pair($0.0, $0.1) })
        let decoded = try TextParameters.parse(text.encoded())
        #expect(decoded == text)
    }

    @Test func encodedFormIsNullTerminated() {
        var text = TextParameters()
        text.append("A", "1")
        text.append("B", "")
        #expect(text.encoded() == Array("A=1\0B=\0".utf8))
    }

    @Test func paddingNullsAndMissingFinalNullAreTolerated() throws {
        let decoded = try TextParameters.parse(Array("A=1\0\0\0B=2".utf8))
        #expect(decoded.pairs == [.init("A", "1"), .init("B", "2")])
    }

    struct Bad: Sendable, CustomStringConvertible {
        var line: Int
        var bytes: [UInt8]
        var error: TextParameterError
        var description: String { "line \(line)" }
    }

    static let bad: [Bad] = [
        Bad(line: #line, bytes: Array("A=1\0A=2\0".utf8), error: .duplicateKey("A")),
        Bad(line: #line, bytes: Array("NoEquals\0".utf8), error: .missingEquals("NoEquals")),
        Bad(line: #line, bytes: Array("=v\0".utf8), error: .emptyKey),
        Bad(line: #line, bytes: Array((String(repeating: "K", count: 64) + "=v\0").utf8), error: .keyTooLong(64)),
        Bad(line: #line, bytes: Array("Bad Key=v\0".utf8), error: .invalidKeyCharacter("Bad Key")),
        Bad(
            line: #line, bytes: Array(("A=" + String(repeating: "v", count: 256) + "\0").utf8),
            error: .valueTooLong(key: "A", length: 256)),
        Bad(line: #line, bytes: Array("A=".utf8) + [0xff, 0xfe, 0], error: .invalidUTF8(key: "A")),
        Bad(
            line: #line, bytes: Array(("CHAP_C=0x" + String(repeating: "ab", count: 1025) + "\0").utf8),
            error: .valueTooLong(key: "CHAP_C", length: 2052)),
    ]

    @Test("malformed text is refused", arguments: bad)
    func malformed(_ bad: Bad) {
        #expect(throws: bad.error) { try TextParameters.parse(bad.bytes) }
    }

    @Test func keyOf64KiBIsRefusedWithoutCrash() {
        let bytes = [UInt8](repeating: UInt8(ascii: "K"), count: 65536) + Array("=v\0".utf8)
        #expect(throws: TextParameterError.textTooLong(bytes.count)) { try TextParameters.parse(bytes) }
        #expect(throws: TextParameterError.keyTooLong(65536)) {
            try TextParameters.parse(bytes, maxTotalLength: 1 << 20)
        }
    }

    @Test func binaryValueOf1024BytesIsAccepted() throws {
        let value = "0x" + String(repeating: "ab", count: 1024)
        let decoded = try TextParameters.parse(Array(("CHAP_C=" + value + "\0").utf8))
        #expect(decoded["CHAP_C"].flatMap { BinaryValue.decode($0) }?.count == 1024)
    }

    @Test(
        "binary values",
        arguments: [
            ("0x0102ff", [0x01, 0x02, 0xff] as [UInt8]?),
            ("0X0A", [0x0a]),
            ("0xabc", [0x0a, 0xbc]),
            ("0b AQID", nil),
            ("0bAQID", [1, 2, 3]),
            ("0BAQI=", [1, 2]),
            ("0xzz", nil),
            ("12", nil),
            ("0x", nil),
        ])
    func binaryValues(_ text: String, _ expected: [UInt8]?) {
        #expect(BinaryValue.decode(text) == expected)
    }

    @Test func hexEncoding() {
        #expect(BinaryValue.encodeHex([0x00, 0xab, 0x10]) == "0x00ab10")
    }

    @Test(
        "numeric values",
        arguments: [
            ("8192", UInt64(8192) as UInt64?), ("0x2000", 8192), ("", nil), ("-1", nil), ("12a", nil),
            ("99999999999999999999999", nil),
        ])
    func numericValues(_ text: String, _ expected: UInt64?) {
        #expect(NumericValue.parse(text) == expected)
    }
}
