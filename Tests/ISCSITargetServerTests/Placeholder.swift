import Testing
@Test func placeholderISCSITargetServerTests() { #expect(Bool(true)) }
