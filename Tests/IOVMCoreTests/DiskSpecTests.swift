import CLibXen
import Foundation
import IOVMCore
import IOVMWireFormat
import Testing

/// iovm's reading of xl disk specs must agree with libxlutil's own parser (`xlu_disk_parse`).
@Suite("Disk specs")
struct DiskSpecTests {
    /// What libxlutil makes of `spec`: target, vdev, format, backend, readwrite.
    func libxlutil(_ spec: String) throws -> (String, String, String, String, Bool) {
        let report = fopen("/dev/null", "w")
        defer { fclose(report) }
        let config = try #require(xlu_cfg_init(report, "disk-test"))
        defer { xlu_cfg_destroy(config) }
        var disk = libxl_device_disk()
        libxl_device_disk_init(&disk)
        defer { libxl_device_disk_dispose(&disk) }
        let rc = spec.withCString { text in
            var specs: [UnsafePointer<CChar>?] = [text]
            return specs.withUnsafeMutableBufferPointer { xlu_disk_parse(config, 1, $0.baseAddress, &disk) }
        }
        #expect(rc == 0, "xlu_disk_parse(\(spec)) = \(rc)")
        return (
            String(cString: disk.pdev_path), String(cString: disk.vdev),
            String(cString: libxl_disk_format_to_string(disk.format)),
            String(cString: libxl_disk_backend_to_string(disk.backend)), disk.readwrite != 0
        )
    }

    @Test(arguments: ["phy:/dev/vdb,xvda,r", "/var/lib/iovm/root.img,raw,xvdb,rw", "file:/srv/guest.img,xvdc,w", "/dev/vg0/iovm,,xvda,ro"])
    func agreesWithLibxlutil(spec: String) throws {
        let mine = try #require(DiskSpec(spec))
        let (target, vdev, format, backend, readWrite) = try libxlutil(spec)
        #expect(mine.target == target)
        #expect(mine.vdev == vdev)
        #expect(mine.format == format || (format == "empty" && mine.format == "raw"), "format \(format)")
        #expect(mine.readWrite == readWrite)
        #expect(backend == "unknown", "libxl chooses the backend")
    }

    @Test(arguments: ["", "xvda", "/dev/vdb,xvda", "relative.img,xvda,r", "/dev/vdb,xvda,x", "/a,b,c,d,e", "/dev/vdb,xv-da,r"])
    func rejectsOtherForms(spec: String) {
        #expect(DiskSpec(spec) == nil)
    }

    @Test func disksReachXLConfigAndLibXLJSON() throws {
        var document = Fixture.generated(.monolithic, nics: ["0000:00:10.0"], guests: 1, placement: .credit)
        document.defaults?.iovmDisks = ["phy:/dev/vdb,xvda,r"]
        document.guests[0].resources.disks = ["bad"]
        let errors = Fixture.errors(document)
        #expect(errors.map(\.message) == ["disk \"bad\" of guest guest1 is not [phy:|file:]/PATH,VDEV,ACCESS or /PATH,FORMAT,VDEV,ACCESS (e.g. phy:/dev/vdb,xvda,r)"])
        #expect(errors.first?.location == Fixture.at(20))
        document.guests[0].resources.disks = nil
        let plan = try Fixture.plan(document)
        let rendered = try PlanRenderer().render(plan)
        #expect(try #require(rendered.file("iovm0.cfg")).contents.contains("disk = [ 'phy:/dev/vdb,xvda,r' ]"))
        #expect(try #require(rendered.file("guest1.cfg")).contents.contains("\ndisk =") == false)
        let text = try #require(rendered.file("iovm0.json")).contents
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let disk = try #require((json["disks"] as? [[String: Any]])?.first)
        #expect(disk["pdev_path"] as? String == "/dev/vdb")
        #expect(disk["vdev"] as? String == "xvda")
        #expect(disk["readwrite"] as? Int == 0)
        #expect(disk["backend"] == nil)
    }
}
