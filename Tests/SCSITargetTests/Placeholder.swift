import Testing
@Test func placeholderSCSITargetTests() { #expect(Bool(true)) }
