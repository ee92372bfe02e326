import Foundation
import Training
import XCTest

/// metrics.jsonl keeps rows with non-finite values (written as null) instead of dropping them.
final class MetricsLogTests: XCTestCase {
    /// A row that cannot be written (ENOSPC from /dev/full) is an error naming the file and the cause, not a crash.
    func testAFullDiskIsAnErrorNotACrash() throws {
        let log = try MetricsLog(path: "/dev/full")
        XCTAssertThrowsError(try log.write(["step": 1, "loss": 0.5])) { e in
            XCTAssertEqual("\(e)", "/dev/full: cannot write a metrics row: No space left on device")
        }
    }

    func testNonFiniteValuesAreWrittenAsNull() throws {
        let path = NSTemporaryDirectory() + "f2w-metrics-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try MetricsLog(path: path)
        try log.write(["step": 1, "d.loss": Double.nan, "g.loss": Float.infinity, "lr": 1e-4])
        try log.write(["step": 2, "d.loss": 0.5])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "no row dropped")
        XCTAssertEqual(String(lines[0]), #"{"d.loss":null,"g.loss":null,"lr":0.0001,"step":1}"#)
    }

    /// A resumed run opens the log at its first step: later rows of the earlier run go (they are redone), and so
    /// does a half-written last line of a crash; earlier rows stay as they were.
    func testReopeningAtAStepDropsThatStepAndLaterAndATornLine() throws {
        let path = NSTemporaryDirectory() + "f2w-metrics-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text =
            #"{"lr":1,"step":1}"# + "\n" + #"{"lr":2,"step":2}"# + "\n" + #"{"lr":3,"step":3}"# + "\n" + #"{"lr":4,"st"#
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let log = try MetricsLog(path: path, firstStep: 3)
        try log.write(["step": 3, "lr": 30])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [#"{"lr":1,"step":1}"#, #"{"lr":2,"step":2}"#, #"{"lr":30,"step":3}"#])
    }
}
