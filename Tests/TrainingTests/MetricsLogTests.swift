import Foundation
import Training
import XCTest

/// metrics.jsonl keeps rows with non-finite values (written as null) instead of dropping them.
final class MetricsLogTests: XCTestCase {
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
}
