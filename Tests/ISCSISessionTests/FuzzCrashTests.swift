import Testing

@testable import ISCSISession

/// Inputs the fuzz targets (Tools/fuzz) found, replayed through the same
/// entry points; each is also in Tools/fuzz/corpus/<target>/.
@Suite struct FuzzCrashTests {
    static func replay(_ entry: (UnsafeRawBufferPointer) -> Bool, _ hex: String) -> Bool {
        LoginTestSupport.hex(hex).withUnsafeBytes(entry)
    }

    /// corpus/login/crash-mrdsl-reject-twice: a malformed MaxRecvDataSegmentLength
    /// ("8192IteratorPr") was answered Reject and the target's own declaration followed
    /// in the same response, so the key appeared twice in one text.
    @Test func malformedMaxRecvDataSegmentLengthIsAnsweredOnce() {
        let input =
            "117b00496e69746961746f724e616d653d69716e2e323032362d30312e6465762e746573736572613a696e69746961746f72"
            + "0053657373696f6e5479703d4e6d726f65616c005461726765744e616d653d69716e2e323032362d30312e6465762e746573"
            + "736572613a66757a7a00417574684d6574686f643d4e6f6e65003509014865616465724469676573743d4e6f6e6500446174"
            + "614469676573743d4e6f6e6500496e697430616c5232543d4e6f00496d6d656469617465446174613d596573004d61785265"
            + "6376446174615365676d656e744c656e6774683d383139324974657261746f725072004d617842757273744c656e6774683d"
            + "413632316e3d300044617461504455496e4f726465723d596573004461746153657175656e6365496e4f726465723d596573"
            + "00"
        #expect(Self.replay(LoginFuzzing.negotiate, input))
    }
}
