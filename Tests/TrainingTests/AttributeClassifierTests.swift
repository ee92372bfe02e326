import Dataset
import Engine
import Foundation
import XCTest

@testable import Training

/// The group experiment's judge: trained on webtoon faces only, it must tell the four demo groups apart on faces it
/// has not seen (otherwise the experiment measures the judge), and survive a save/load.
final class AttributeClassifierTests: XCTestCase {
    func faces(split: UInt64, perGroup: Int, size: Int) -> ([RGBImage], [Int]) {
        let n = 4 * perGroup
        return (
            (0..<n).map { DemoData.face(seed: 3, split: split, domain: 1, index: $0, group: $0 % 4, size: size + 30) },
            (0..<n).map { $0 % 4 }
        )
    }

    func testJudgeRecognisesEveryGroupOnFreshFaces() throws {
        let size = 40
        let (train, labels) = faces(split: 2, perGroup: 60, size: size)
        let clf = AttributeClassifier(groups: 4, imageSize: size, seed: 1)
        clf.train(images: train, groups: labels, steps: 300)
        let (test, truth) = faces(split: 3, perGroup: 15, size: size)
        let x = Tensor(uninitialized: [test.count, 3, size, size])
        for (i, img) in test.enumerated() {
            let t = ImageTransforms.test(img, size: size)
            (x.data + i * t.count).update(from: t.data, count: t.count)
        }
        let predicted = clf.predict(x)
        for g in 0..<4 {
            let idx = truth.indices.filter { truth[$0] == g }
            let right = idx.filter { predicted[$0] == g }.count
            XCTAssertGreaterThanOrEqual(Double(right) / Double(idx.count), 0.8, "group \(g): \(right)/\(idx.count)")
        }
        let path = NSTemporaryDirectory() + "judge-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try clf.save(path)
        XCTAssertEqual(try AttributeClassifier.load(path).predict(x), predicted)
    }
}
