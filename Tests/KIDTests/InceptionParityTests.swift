import Dataset
import Engine
import Foundation
import TestSupport
import XCTest

@testable import KID

/// The Swift FID Inception-v3 against PyTorch (fixtures from Scripts/golden/make_inception_golden.py).
final class InceptionParityTests: XCTestCase {
    override class func setUp() { Runtime.configure(threads: 2) }
    override class func tearDown() { Runtime.configure(threads: 1) }  // the thread count is process-wide

    /// The synthetic images and their 299×299 resize are the script's, byte for byte (metadata checksums).
    func testSyntheticImagesAndResizeMatchScript() throws {
        let f = try KIDFixtures.load("inception_random")
        for (k, w, h) in KIDFixtures.images {
            let raw = SyntheticImage.make(k, width: w, height: h)
            XCTAssertEqual(try f.meta("image_\(k)"), "\(w)x\(h)")
            XCTAssertEqual("\(SyntheticImage.checksum(raw))", try f.meta("checksum_raw_\(k)"), "synthetic image \(k)")
            XCTAssertEqual(
                "\(SyntheticImage.checksum(FIDPreprocess.resized(raw)))", try f.meta("checksum_299_\(k)"),
                "Pillow bilinear resize of image \(k) to 299")
        }
    }

    /// Case `inception_random`: the width/16 network with random weights and batch-norm statistics, whole forward
    /// (every block type and pool at 299×299), two images as one batch: stage outputs of image 0 and the features.
    func testRandomWeightNetworkMatchesPyTorch() throws {
        let f = try KIDFixtures.load("inception_random")
        let net = try FIDInceptionV3(file: f.file)
        XCTAssertEqual(net.featureCount, 128)
        let images = KIDFixtures.images.map { SyntheticImage.make($0.0, width: $0.1, height: $0.2) }
        var taps: [String: Tensor] = [:]
        let feats = net.features(FeatureMap(FIDPreprocess.batch(images))) { name, map in taps[name] = map.nchw() }
        let expected = try f["features"]
        let rel = maxRelativeDifference(feats, expected)
        print("inception_random parity: features max rel \(rel), l2 rel \(l2RelativeDifference(feats, expected))")
        XCTAssertLessThan(rel, 1e-4, "features [2, 128]")
        for name in ["pool1", "mixed", "mixed_2", "mixed_3", "mixed_7", "mixed_8", "mixed_9", "mixed_10"] {
            let want = try f["tap.\(name)"]
            guard let got = taps[name] else {
                XCTFail("no tap \(name)")
                continue
            }
            let image0 = Tensor(view: got.data, shape: want.shape, owner: got)
            XCTAssertLessThan(maxRelativeDifference(image0, want), 1e-4, "stage \(name) \(want.shape)")
        }
    }

    /// A batch gives each image the features it gets alone (no cross-talk between the images of a batch).
    func testBatchingDoesNotChangeFeatures() throws {
        let net = try FIDInceptionV3(file: try KIDFixtures.load("inception_random").file)
        let images = KIDFixtures.images.map { SyntheticImage.make($0.0, width: $0.1, height: $0.2) }
        let together = net.features(images: images, batchSize: 2)
        let alone = net.features(images: images, batchSize: 1)
        XCTAssertEqual(together.shape, [2, 128])
        XCTAssertLessThan(maxRelativeDifference(together, alone), 1e-5)
        XCTAssertGreaterThan(
            maxRelativeDifference(
                Tensor(view: together.data, shape: [128], owner: together),
                Tensor(view: together.data + 128, shape: [128], owner: together)), 1e-3,
            "two different images must give different features")
    }

    /// Generator outputs [N, 3, H, W] in [−1, 1] are quantised as a PNG would be: an image's own pixels, mapped to
    /// v/127.5 − 1, give exactly that image's features.
    func testGeneratorOutputsAreQuantisedLikePNGs() throws {
        let net = try FIDInceptionV3(file: try KIDFixtures.load("inception_random").file)
        let image = SyntheticImage.make(3, width: 40, height: 32)
        let t = Tensor(uninitialized: [1, 3, 32, 40])
        for y in 0..<32 {
            for x in 0..<40 {
                for c in 0..<3 {
                    t[(c * 32 + y) * 40 + x] = Float(image.pixels[(y * 40 + x) * 3 + c]) / 127.5 - 1 + 0.001
                }
            }
        }
        let a = net.features(generatorOutputs: t)
        let b = net.features(images: [image])
        XCTAssertEqual(a.array, b.array)
    }

    /// Case `inception_real`: the real network (weights from $F2W_INCEPTION_WEIGHTS or the default cache path)
    /// against the TorchScript's features of the two synthetic images. Skipped when the weights are absent.
    func testRealNetworkMatchesTorchScript() throws {
        let path = FIDInceptionV3.defaultWeightsPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip(
                "real FID Inception weights not at \(path); create them with: "
                    + FIDInceptionV3.convertCommand(output: path))
        }
        let f = try KIDFixtures.load("inception_real")
        let net = try FIDInceptionV3(weightsPath: path)
        XCTAssertEqual(net.featureCount, 2048)
        if let sha = net.sourceSHA1 {
            XCTAssertEqual(sha, try f.meta("source_sha1"), "weights converted from another TorchScript")
        }
        let images = KIDFixtures.images.map { SyntheticImage.make($0.0, width: $0.1, height: $0.2) }
        let feats = net.features(images: images)
        let expected = try f["features"]
        let rel = maxRelativeDifference(feats, expected)
        print("inception_real parity: features max rel \(rel), l2 rel \(l2RelativeDifference(feats, expected))")
        XCTAssertLessThan(rel, 1e-4, "features [2, 2048] vs TorchScript")
    }
}
