import CPUSets
import Foundation
import Testing

@Suite("CPUSet")
struct CPUSetTests {
    @Test func formatsAsXlRanges() {
        #expect(CPUSet([3]).description == "3")
        #expect(CPUSet([0, 1]).description == "0-1")
        #expect(CPUSet([0, 2, 3, 5]).description == "0,2-3,5")
        #expect(CPUSet([3, 1, 1, 2]).cores == [1, 2, 3])
        #expect(([0, 2, 4, 5, 6, 9] as CPUSet).description == "0,2,4-6,9")
        #expect(CPUSet([]).description == "")
        #expect(CPUSet([]).isEmpty && !CPUSet([0]).isEmpty)
    }

    @Test func codesAsAnArrayOfCores() throws {
        let data = try JSONEncoder().encode(CPUSet([3, 1, 2]))
        #expect(String(decoding: data, as: UTF8.self) == "[1,2,3]")
        #expect(try JSONDecoder().decode(CPUSet.self, from: Data("[5,4,4]".utf8)) == [4, 5])
    }

    @Test(arguments: [
        ("0-3", [0, 1, 2, 3], "0-3"),
        ("2,3", [2, 3], "2-3"),
        ("3", [3], "3"),
        ("0-7,^3", [0, 1, 2, 4, 5, 6, 7], "0-2,4-7"),
        ("^3,2-4", [2, 3, 4], "2-4"),  // applied left to right, like xl
        (" 1 , 5-6 ", [1, 5, 6], "1,5-6"),
        ("0-1,1-2", [0, 1, 2], "0-2"),
        ("", [], ""),
    ])
    func parsesXlLists(text: String, cores: [Int], formatted: String) throws {
        let set = try #require(try CPUSet(xlList: text))
        #expect(set.cores == cores)
        #expect(set.description == formatted)
        #expect(try CPUSet(xlList: set.description) == set)
    }

    @Test func listsFromAllNeedAHostCPUCount() throws {
        #expect(try CPUSet(xlList: "all") == nil)
        #expect(try CPUSet(xlList: "all,^0") == nil)
        #expect(try CPUSet(xlList: "1,all") == nil)
        #expect(try CPUSet(xlList: "all", cpuCount: 4) == [0, 1, 2, 3])
        #expect(try CPUSet(xlList: "all,^0", cpuCount: 4) == [1, 2, 3])
        #expect(try CPUSet(xlList: "all,^0-1,^3", cpuCount: 6) == [2, 4, 5])
        #expect(try CPUSet(xlList: "all,^0-5,2", cpuCount: 8) == [2, 6, 7])
        #expect(try CPUSet(xlList: "all,^all,3", cpuCount: 8) == [3])
        #expect(try CPUSet(xlList: "2-3", cpuCount: 2) == [2, 3])  // an explicit list is kept as written
    }

    @Test(arguments: ["3-1", "a", "1-", "-1", "1--2", "1,,2", ",", "0x3", "1.5", "nodes:0", "99999", "2-3-4", "^"])
    func rejectsBadInput(text: String) {
        #expect(throws: CPUListError.self) { try CPUSet(xlList: text) }
        do {
            _ = try CPUSet(xlList: text)
        } catch {
            #expect(error.text == text)
            #expect(!error.reason.isEmpty)
            #expect(error.description.hasPrefix("invalid CPU list \"\(text)\": "))
        }
    }
}
