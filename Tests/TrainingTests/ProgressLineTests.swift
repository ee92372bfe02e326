@testable import Monitoring
import XCTest

/// The progress line of long operations (translate, kid, merge, export, the data scan) on a pipe and a terminal.
final class ProgressLineTests: XCTestCase {
    func testAQuickOperationOnAPipeWritesOnlyItsLastLine() {
        var lines: [String] = []
        let p = ProgressLine(label: "translate", total: 5, terminal: false, write: { lines.append($0) })
        for i in 1...5 { p.update(i) }
        p.finish()
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines[0].hasPrefix("[face2webtoon] translate 5/5 images | "), lines[0])
        XCTAssertTrue(lines[0].hasSuffix(" | ETA 0m00s\n"), lines[0])
    }

    func testATerminalLineIsRewrittenInPlaceAndEnded() {
        var out = ""
        let p = ProgressLine(label: "merge", total: 100, unit: "MB", terminal: true, write: { out += $0 })
        p.update(100)  // the last value is always shown
        p.finish()
        XCTAssertTrue(out.hasPrefix("\r[face2webtoon] merge 100/100 MB | "), out)
        XCTAssertTrue(out.hasSuffix("\u{1B}[K\n"), out)
    }

    /// A line made when the first part is done (its total is known only then) counts that part's time in its rate:
    /// `kid` showed a million images per second.
    func testTheRateCountsFromTheStartGiven() {
        var lines: [String] = []
        let p = ProgressLine(
            label: "KID features of testB", total: 4, terminal: false, write: { lines.append($0) },
            start: Date(timeIntervalSinceNow: -8))
        p.update(4)
        p.finish()
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].contains("4/4 images | 0.50 images/s"), lines[0])
    }

    func testWithoutATotalTheCountAndRateAreShown() {
        var lines: [String] = []
        let p = ProgressLine(label: "scanning trainA", total: nil, unit: "files", terminal: false) { lines.append($0) }
        p.update(3400)
        p.finish()
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix("[face2webtoon] scanning trainA 3400 files | "), lines[0])
        XCTAssertFalse(lines[0].contains("ETA"), lines[0])
    }
}

/// The report's plot axes are labelled at round values.
final class PlotTickTests: XCTestCase {
    func testTicksAreRoundValues() {
        XCTAssertEqual(SVGPlot.niceTicks(1, 40), [10, 20, 30, 40])
        XCTAssertEqual(SVGPlot.niceTicks(0.129, 0.9), [0.2, 0.4, 0.6, 0.8])
        XCTAssertEqual(SVGPlot.niceTicks(-0.5, 0.5), [-0.5, 0, 0.5])
        XCTAssertEqual(SVGPlot.niceTicks(0, 20000), [0, 5000, 10000, 15000, 20000])
        XCTAssertEqual(SVGPlot.niceTicks(3, 3), [3])
        XCTAssertEqual(SVGPlot.logTicks(log10(0.129), log10(15.8)), [1, 10])
        XCTAssertEqual(SVGPlot.logTicks(log10(0.3), log10(0.9)), [0.5])
        XCTAssertEqual(SVGPlot.logTicks(log10(0.127), log10(8621)), [1, 10, 100, 1000])
    }
}
