import Testing
@Test func placeholderISCSISessionTests() { #expect(Bool(true)) }
