import Testing

@testable import ISCSIWire

/// A deterministic generator for reproducible "random" tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct CRC32CTests {
    /// RFC 3720 Appendix B.4 test vectors; the RFC lists the digest bytes in
    /// wire order (least significant first), so `aa 36 91 8a` is 0x8A9136AA.
    static let vectors: [(line: Int, bytes: [UInt8], crc: UInt32)] = [
        (#line, [UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        (#line, [UInt8](repeating: 0xff, count: 32), 0x62A8_AB43),
        (#line, (0..<32).map { UInt8($0) }, 0x46DD_794E),
        (#line, (0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
        (
            #line,
            [
                0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
                0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ], 0xD996_3A56
        ),
    ]

    @Test(arguments: 0..<vectors.count)
    func rfc3720Vectors(index: Int) {
        let v = Self.vectors[index]
        v.bytes.withUnsafeBytes { raw in
            #expect(CRC32C.portable(raw) == v.crc, "vector at line \(v.line), portable")
            #expect(CRC32C.hardware(raw) == v.crc, "vector at line \(v.line), hardware")
            #expect(CRC32C.checksum(raw) == v.crc, "vector at line \(v.line), dispatch")
        }
    }

    @Test func hardwarePathIsUsedOnThisMachine() {
        // x86-64 machines of the last 15 years all have SSE4.2; the
        // benchmark numbers assume the hardware path.
        #if arch(x86_64)
            #expect(CRC32C.hardwareAvailable)
        #endif
    }

    @Test func implementationsAgreeOnRandomLengthsAndAlignments() {
        var rng = SplitMix64(seed: 0x7e55_e7a)
        let storage = (0..<4200).map { _ in UInt8.random(in: 0...255, using: &rng) }
        storage.withUnsafeBytes { all in
            for _ in 0..<2000 {
                let offset = Int.random(in: 0..<16, using: &rng)
                let length = Int.random(in: 0...(all.count - 16), using: &rng)
                let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                let portable = CRC32C.portable(slice)
                let hardware = CRC32C.hardware(slice)
                if portable != hardware {
                    Issue.record("offset \(offset) length \(length): portable \(portable) hardware \(hardware)")
                    return
                }
            }
        }
    }

    @Test func continuationEqualsWholeBuffer() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        bytes.withUnsafeBytes { raw in
            let whole = CRC32C.checksum(raw)
            for split in [0, 1, 3, 8, 17, 500, 999, 1000] {
                let first = CRC32C.portable(UnsafeRawBufferPointer(rebasing: raw[0..<split]))
                let second = CRC32C.hardware(UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: first)
                #expect(second == whole, "split at \(split)")
            }
        }
    }

    @Test func emptyInputIsIdentity() {
        [UInt8]().withUnsafeBytes { raw in
            #expect(CRC32C.checksum(raw) == 0)
            #expect(CRC32C.checksum(raw, continuing: 0x1234_5678) == 0x1234_5678)
        }
    }
}
