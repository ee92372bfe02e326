import Foundation
import Monitoring
import TestSupport
import XCTest

/// TensorBoard event files: the wire format (CRC-32C, varints, TFRecord frames), and a resumed run whose redone steps
/// replace the earlier values in metrics.jsonl and, as the real `tensorboard` package reads them, in the event files.
final class TensorBoardTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-tb-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func testCRC32CAndVarintMatchTheirSpecifications() {
        // the CRC-32C check value of "123456789" (RFC 3720 B.4, the Castagnoli catalogue entry)
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)  // RFC 3720 B.4: 32 zero bytes
        var w = ProtoWriter()
        w.int(1, 150)  // the protobuf encoding guide's example: 08 96 01
        XCTAssertEqual(w.bytes, [0x08, 0x96, 0x01])
        var n = ProtoWriter()
        n.int(2, Int64(-1))  // negative int64: ten bytes
        XCTAssertEqual(n.bytes, [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    /// Every record of an event file is framed as TFRecord says, with both masked CRCs right.
    func testEventFileFramesCarryValidMaskedCRCs() throws {
        let w = try TensorBoardWriter(directory: work, firstStep: 1, wallTime: 1000)
        w.scalars([("loss", 0.5), ("lr", 1e-4)], step: 1)
        w.text(tag: "config", "hello", step: 1)
        w.flush()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: w.path)))
        var off = 0
        var records = 0
        while off < bytes.count {
            XCTAssertLessThanOrEqual(off + 12, bytes.count)
            let lenBytes = Array(bytes[off..<off + 8])
            let len = lenBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            let lenCRC = bytes[off + 8..<off + 12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            XCTAssertEqual(lenCRC, CRC32C.masked(lenBytes))
            let body = Array(bytes[off + 12..<off + 12 + Int(len)])
            let bodyCRC = bytes[off + 12 + Int(len)..<off + 16 + Int(len)].withUnsafeBytes {
                $0.loadUnaligned(as: UInt32.self)
            }
            XCTAssertEqual(bodyCRC, CRC32C.masked(body))
            off += 16 + Int(len)
            records += 1
        }
        XCTAssertEqual(off, bytes.count)
        XCTAssertEqual(records, 4, "file_version, SessionLog START, scalars, text")
    }

    /// A full disk (the event file is a link to /dev/full, whose writes fail with ENOSPC) is told once and never
    /// ends the run (it crashed the program, 132, in stop 34's build).
    func testAFullDiskIsAWarningOnce() throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let file = "\(work)/events.out.tfevents.1000.\(host).\(getpid())"
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: "/dev/full")
        var warnings: [String] = []
        let w = try TensorBoardWriter(directory: work, firstStep: 1, wallTime: 1000, warn: { warnings.append($0) })
        XCTAssertEqual(w.path, file)
        w.scalars([("loss", 0.5)], step: 1)
        w.text(tag: "config", "hello", step: 1)
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings[0].contains("\(file): cannot write: No space left on device"), "\(warnings)")
    }

    /// A run stopped at step 4 and resumed from its step-3 checkpoint redoes step 4: metrics.jsonl holds each step
    /// once, and the real TensorBoard reader (Scripts/checks/check_tensorboard.py) sees every scalar of metrics.jsonl
    /// at its step, no step twice, and the sample grids. Scripts/test installs the reader and requires this check.
    func testResumedRunReplacesRedoneStepsInMetricsAndTensorBoard() throws {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "face2webtoon not built")
        let dir = "\(work)/run"
        let common = [
            "train", "--demo", "--result-dir", dir, "--iterations", "6", "--save-every", "3", "--sample-every", "3",
        ]
        var r = try ProcessRunner.run([bin] + common + ["--stop-at", "4"], timeout: 300)
        XCTAssertEqual(r.exitCode, 0, r.output)
        r = try ProcessRunner.run([bin] + common + ["--resume", "\(dir)/checkpoints/step_00000003"], timeout: 300)
        XCTAssertEqual(r.exitCode, 0, r.output)
        let rows = try String(contentsOfFile: "\(dir)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let steps = try rows.map { line -> Int in
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try XCTUnwrap(o["step"] as? Int)
        }
        XCTAssertEqual(steps, [1, 2, 3, 4, 5, 6], "step 4 was redone and replaced, not appended")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/tensorboard")
        XCTAssertEqual(files.filter { $0.hasPrefix("events.out.tfevents.") }.count, 2, "one event file per run")

        let env = ProcessInfo.processInfo.environment
        guard let python = env["F2W_CHECK_PYTHON"] else {
            if env["F2W_REQUIRE_CHECKS"] == "1" { XCTFail("F2W_REQUIRE_CHECKS=1 but no F2W_CHECK_PYTHON") }
            throw XCTSkip("no F2W_CHECK_PYTHON with the tensorboard package (Scripts/test sets it up)")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/checks/check_tensorboard.py").path
        let c = try ProcessRunner.run([python, script, dir, "--expect-images", "2"], timeout: 300)
        XCTAssertEqual(c.exitCode, 0, c.output)
        XCTAssertTrue(c.output.contains("check_tensorboard: ok"), c.output)

        // the HTML report of the same run, rendered in headless Chromium (Scripts/checks/check_report.py)
        let page = "\(work)/report.html"
        let rep = try ProcessRunner.run([bin, "report", dir, "-o", page], timeout: 120)
        XCTAssertEqual(rep.exitCode, 0, rep.output)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertFalse(html.contains("http://") && html.contains("<script src"), "the page loads nothing")
        // steps 3 and 6, and 4, where the first run stopped (a stopped run writes its grids; resumed bit for bit, its
        // step 4 is the same model as the redone one's)
        XCTAssertEqual(
            html.components(separatedBy: "class=\"grid grid_A2B\"").count - 1, 3, "grids of steps 3, 4 and 6")
        XCTAssertTrue(html.contains("step_00000006"), "the checkpoint list")
        let checker = URL(fileURLWithPath: script).deletingLastPathComponent().appendingPathComponent("check_report.py")
        let shot = try ProcessRunner.run([python, checker.path, page, "--png", "\(work)/report.png"], timeout: 300)
        XCTAssertEqual(shot.exitCode, 0, shot.output)
        XCTAssertTrue(shot.output.contains("check_report: ok"), shot.output)
    }

    func testReportOfAFolderWithoutMetricsNamesTheFile() throws {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "face2webtoon not built")
        let r = try ProcessRunner.run([bin, "report", work], timeout: 60)
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("\(work)/metrics.jsonl: no metrics.jsonl"), r.output)
    }
}
