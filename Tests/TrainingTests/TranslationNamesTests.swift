import XCTest

@testable import Training

/// `translate` mirrors the input tree and never gives two inputs one output (hardening issue, item 8).
final class TranslationNamesTests: XCTestCase {
    func testSameBaseNamesInSubfoldersStayApart() {
        let out = TranslationNames.outputs(for: ["a/x.jpg", "b/x.jpg", "x.png"], heatmap: false)
        XCTAssertEqual(out.map(\.image), ["a/x.png", "b/x.png", "x.png"])
        XCTAssertEqual(out.map(\.heatmap), [nil, nil, nil])
    }

    func testCollisionsKeepTheExtensionAndEveryPathIsDistinct() {
        let inputs = ["x.jpg", "x.png", "y.jpg", "y_heatmap.png", "z.jpg", "z.jpg.png"]
        let out = TranslationNames.outputs(for: inputs, heatmap: true)
        XCTAssertEqual(out[0], .init(image: "x.jpg.png", heatmap: "x.jpg_heatmap.png"))
        XCTAssertEqual(out[1], .init(image: "x.png.png", heatmap: "x.png_heatmap.png"))
        XCTAssertEqual(out[2].image, "y.jpg.png")  // y_heatmap.png would be claimed twice
        XCTAssertEqual(out[3].image, "y_heatmap.png.png")
        let all = out.flatMap { [$0.image, $0.heatmap!] }
        XCTAssertEqual(Set(all).count, all.count, "\(all)")
        XCTAssertEqual(
            TranslationNames.outputs(for: ["y.jpg", "y_heatmap.png"], heatmap: false).map(\.image),
            ["y.png", "y_heatmap.png"])
    }
}
