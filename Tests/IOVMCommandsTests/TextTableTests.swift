import Testing

@testable import IOVMCommands

@Suite("Text tables")
struct TextTableTests {
    @Test("columns as wide as their widest cell, two spaces apart, right alignment, indent, no trailing spaces")
    func render() {
        let text = TextTable.render([["DOMID", "NAME", "MEM"], ["0", "Domain-0", "2048"], ["12", "g", "256"]], rightAligned: [0, 2], indent: "  ")
        #expect(text == "  DOMID  NAME       MEM\n      0  Domain-0  2048\n     12  g          256\n")
        #expect(TextTable.render([["A", "B"], ["long", ""]]) == "A     B\nlong\n")
        #expect(TextTable.render([]) == "")
    }
}
