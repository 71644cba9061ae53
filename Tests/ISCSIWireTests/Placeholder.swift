import Testing
@Test func placeholderISCSIWireTests() { #expect(Bool(true)) }
