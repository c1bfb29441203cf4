import Testing
@Test func monitorPlaceholderBuilds() { #expect(Bool(true)) }
