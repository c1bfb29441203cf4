import Foundation
import SystemPackage
import Testing

@testable import IOVMCore

/// The Foundation-free text pieces the iovm binary uses instead of swift-corelibs-foundation (issue 16).
@Suite("Text without Foundation")
struct TextTests {
    @Test("a template fills variables, drops a standalone section line (not a line of two tags), renders a section by its value")
    func template() throws {
        let template = try TextTemplate(
            """
            {{% CONTENT_TYPE: TEXT}}
            name = "{{name}}"
            {{#pool}}
            pool = "{{pool}}"
            {{/pool}}
            {{#driverDomain}}
            driver_domain = 1
            {{/driverDomain}}
            {{^driverDomain}}
            # a guest
            {{/driverDomain}}
            memory = {{memory}}{{! no unit}}
              {{#empty}}never{{/empty}}
            end

            """)
        #expect(
            template.render(["name": "iovm0", "pool": "iovms", "driverDomain": true, "memory": 256, "empty": ""])
                == "name = \"iovm0\"\npool = \"iovms\"\ndriver_domain = 1\nmemory = 256\n  never\nend\n")
        #expect(template.render(["name": "g<1>", "driverDomain": false]) == "name = \"g<1>\"\n# a guest\nmemory = \n  \nend\n")
    }

    @Test("a template with an unclosed, a stray or an unsupported tag does not parse", arguments: ["{{#a}}x", "x{{/a}}", "{{#a}}{{/b}}", "{{>partial}}", "{{{raw}}}"])
    func badTemplate(text: String) {
        #expect(throws: TextTemplate.ParseError.self) { try TextTemplate(text) }
    }

    @Test("the embedded templates render an IOVM's xl.cfg without blank lines from empty sections")
    func embeddedTemplates() throws {
        let plan = try Fixture.plan(Fixture.generated(.hybrid, groups: 2, nics: Fixture.paperNICs4, guests: 4, placement: .hybridPinned))
        let rendered = try PlanRenderer().render(plan)
        let iovm = try #require(rendered.file("iovm0.cfg")).contents
        #expect(!iovm.contains("\n\n") && !iovm.contains("{{") && iovm.hasPrefix("# IOVM \"iovm0\""))
        #expect(iovm.contains("driver_domain = 1\n") && iovm.contains("pci = [ '"))
    }

    @Test(
        "JSON syntax errors name their line and column",
        arguments: [
            ("{\"a\": 1,\n \"b\": x}", "line 2, column 7: unexpected character 'x' where a value was expected"),
            ("{\"a\": 1", "line 1, column 8: unexpected end of file inside an object"),
            ("{\"a\": 1} x", "line 1, column 10: unexpected character 'x' after the document's value"),
            ("[1, 2,]", "line 1, column 7: unexpected character ']' where a value was expected"),
            ("{\"a\" 1}", "line 1, column 6: unexpected character '1' where ':' was expected after a key"),
            ("\"tab\there\"", "line 1, column 5: unexpected byte 0x9 (a control character) inside a string"),
            ("01", "line 1, column 2: unexpected character '1' after the document's value"),
            ("", "line 1, column 1: unexpected end of file where a value was expected"),
        ])
    func jsonSyntax(text: String, expected: String) {
        #expect(JSONSyntax.check(Data(text.utf8))?.description == expected)
    }

    @Test("valid JSON has no syntax error", arguments: ["{}", " [1, -2.5e3, true, false, null, \"\\u00e9\\n\"] ", "{\"a\": {\"b\": [[]]}}", "0"])
    func jsonValid(text: String) {
        #expect(JSONSyntax.check(Data(text.utf8)) == nil)
        // Foundation's parser agrees.
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil)
    }

    @Test("a key an object has twice is an error, its escapes and Unicode forms resolved; the same key in two objects is not")
    func jsonDuplicateKeys() {
        let cases: [(String, String?)] = [
            (#"{"a": 1, "a": 2}"#, #"line 1, column 10: the key "a" appears twice in one object"#),
            (#"{"k": 1, "\u006b": 2}"#, #"line 1, column 10: the key "k" appears twice in one object"#),
            ("{\"\u{E9}\": 1, \"e\u{301}\": 2}", "line 1, column 11: the key \"\u{E9}\" appears twice in one object"),
            (#"{"\ud83d\ude00": 1, "😀": 2}"#, #"line 1, column 21: the key "😀" appears twice in one object"#),
            (#"{"a": {"b": 1}, "c": {"b": 2}, "d": [{"b": 1}, {"b": 2}]}"#, nil),
            (#"{"a\n": 1, "a": 2, "a\\n": 3}"#, nil),
        ]
        for (text, expected) in cases {
            let failure = JSONSyntax.check(Data(text.utf8))
            #expect(failure?.description == expected, "\(text)")
            #expect(failure.map(\.isDuplicateKey) ?? true)
        }
    }

    @Test("a document's keys, each with its JSON path, offset and whether its value is null")
    func jsonKeys() throws {
        let text = "{\"a\": {\"b\": null, \"c d\": [1, {\"e\": 2}]},\n \"f\": []}"
        let keys = try #require(JSONSyntax.keys(of: Array(text.utf8)))
        #expect(keys.map(\.path) == ["$.a", "$.a.b", #"$.a["c d"]"#, #"$.a["c d"][1].e"#, "$.f"])
        #expect(keys.map(\.valueIsNull) == [false, true, false, false, false])
        let f = try #require(keys.last)
        #expect(JSONSyntax.position(of: f.offset, in: Array(text.utf8)) == (2, 2))
        #expect(JSONSyntax.keys(of: Array("{\"a\": }".utf8)) == nil)
    }

    @Test("cFormat formats as printf does, past its first buffer too")
    func cFormat() {
        #expect(String(cFormat: "%.1f s", 2.25) == String(format: "%.1f s", 2.25))
        #expect(String(cFormat: "%+.1f%%", -3.06) == "-3.1%")
        #expect(String(cFormat: "%02ld:%llu", 7, UInt64.max) == "07:18446744073709551615")
        let long = String(repeating: "x", count: 300)
        #expect(String(cFormat: "%.3f " + long, 1.0) == "1.000 " + long)
    }

    @Test("a shell word is quoted by scalar: a quote with a combining mark after it is escaped too")
    func shellWord() {
        #expect(ShellWord.quoted("iovm0") == "iovm0")
        #expect(ShellWord.quoted("a b") == "'a b'")
        #expect(ShellWord.quoted("it's") == "'it'\\''s'")
        // "'\u{301}" is one Character; unescaped, it would end the quotes and run `touch`.
        #expect(ShellWord.quoted("x'\u{301};touch p") == "'x'\\''\u{301};touch p'")
        #expect(ShellWord.quoted("é") == "'é'")
    }

    @Test("a file's size reads with or without swift-corelibs-foundation")
    func fileSize() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "iovm-size-\(UUID().uuidString)").path
        try Data(repeating: 7, count: 1234).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileBytes.size(path) == 1234)
        #expect(FileBytes.size(path + ".missing") == nil)
    }

    @Test("a file is read whole or to the limit, whatever its size; a pipe and an empty file too")
    func fileBytes() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "iovm-bytes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for size in [0, 1, 2_800, 65_535, 65_536, 65_537, 200_000] {
            let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(FileBytes.read(path, upTo: .max) == bytes, "\(size)")
            #expect(FileBytes.read(path, upTo: 100) == bytes.prefix(100), "\(size)")
            #expect(FileBytes.read(path, upTo: size + 1) == bytes, "\(size)")
        }
        #expect(FileBytes.read(path + ".missing", upTo: 10) == nil)
        // A pipe has no size: read in chunks to its end.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let text = Array(String(repeating: "iovm ", count: 2_000).utf8)
        #expect(text.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) } == text.count)
        close(ends[1])
        let read = try FileBytes.read(FileDescriptor(rawValue: ends[0]))
        close(ends[0])
        #expect(read == Data(text))
    }

    @Test("whitespace trimming keeps inner spaces and drops CR LF")
    func trimming() {
        #expect(" \t a b \r\n".trimmingWhitespace() == "a b")
        #expect("   ".trimmingWhitespace() == "")
    }

    @Test("JSONValue keeps integers past Int64 exact and drops members at every depth")
    func jsonValue() throws {
        let data = Data(#"{"seed": 18446744073709551615, "source": "x", "a": [{"source": 1, "b": 2.5}]}"#.utf8)
        let value = try JSONDecoder().decode(JSONValue.self, from: data)
        #expect(value["seed"] == .unsigned(.max))
        #expect(value.removingMembers(["source"]) == .object(["seed": .unsigned(.max), "a": .array([.object(["b": .number(2.5)])])]))
    }

    @Test("a PThread runs its body with its name; PThreadCondition wakes the waiter")
    func threads() {
        let condition = PThreadCondition()
        nonisolated(unsafe) var name = ""
        nonisolated(unsafe) var done = false
        let thread = PThread {
            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            condition.lock()
            name = comm
            done = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "iovm-test-thread-long-name"
        thread.stackSize = 1 << 20
        thread.start()
        condition.lock()
        while !done { condition.wait() }
        condition.unlock()
        #expect(name == "iovm-test-threa\n")
    }
}
