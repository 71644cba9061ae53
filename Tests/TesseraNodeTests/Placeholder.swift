import Testing
@Test func placeholderTesseraNodeTests() { #expect(Bool(true)) }
