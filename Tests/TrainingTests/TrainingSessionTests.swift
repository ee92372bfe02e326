import Dataset
import Distributed
import Foundation
import UGATIT
import XCTest

@testable import Training

/// Run setup without the command line: `TrainingSession.prepare` draws the demo data, resolves the groups from the
/// group folders, trains, and on a second call resumes from the checkpoint the first one saved.
final class TrainingSessionTests: XCTestCase {
    var work = ""

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-session-\(UUID().uuidString)"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func config(iterations: Int) -> (ModelConfig?) throws -> TrainConfig {
        { saved in
            var c = TrainConfig(
                model: saved ?? ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3),
                iterations: iterations, printEvery: 1, sampleEvery: 0, saveEvery: 2)
            c.ada.mode = .off
            return c
        }
    }

    func testPrepareDrawsTheDemoResolvesGroupsAndResumes() throws {
        var o = SessionOptions(resultDir: "\(work)/run")
        o.demo = (train: 12, test: 2)
        o.groups = [0, 1]
        var lines: [String] = []
        var scanned: [String: Int] = [:]
        let first = try TrainingSession.prepare(
            o, parallel: DataParallel(comm: SingleRankCommunicator()), makeConfig: config(iterations: 2),
            scanProgress: { domain, files, finished in if finished { scanned[domain] = files } },
            say: { lines.append($0) })
        XCTAssertEqual(scanned, ["A": 12, "B": 12])
        XCTAssertEqual(first.config.groups?.selected, [0, 1])
        XCTAssertEqual(first.config.model.groups, 4, "the demo data has group folders 0-3: K = 4")
        XCTAssertTrue(lines.contains { $0.contains("no checkpoint in \(work)/run/checkpoints: fresh start") }, "\(lines)")
        XCTAssertEqual(first.state.step, 0)
        // a second run on the folder while the first holds it (two jobs, or a restart while the old one lives)
        XCTAssertThrowsError(
            try TrainingSession.prepare(
                o, parallel: DataParallel(comm: SingleRankCommunicator()), makeConfig: config(iterations: 2),
                say: { _ in })
        ) { e in
            guard case TrainingError.resultFolderInUse(_, let holder) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(holder.hasPrefix("pid \(getpid()) on "), holder)
            XCTAssertEqual(ExitStatus(for: e), .resultFolderInUse)
        }
        try first.run()  // releases it
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work)/run/checkpoints/step_00000002"))

        lines = []
        let second = try TrainingSession.prepare(
            o, parallel: DataParallel(comm: SingleRankCommunicator()), makeConfig: config(iterations: 4),
            say: { lines.append($0) })
        XCTAssertEqual(second.state.step, 2)
        XCTAssertTrue(lines.contains { $0.contains("checkpoint loaded: ") && $0.contains("step 2") }, "\(lines)")
        try second.run()
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work)/run/checkpoints/step_00000004"))
    }

    func testAConfigurationProblemIsATrainingError() throws {
        var o = SessionOptions(resultDir: "\(work)/run")
        o.demo = (train: 4, test: 1)
        XCTAssertThrowsError(
            try TrainingSession.prepare(
                o, parallel: DataParallel(comm: SingleRankCommunicator()),
                makeConfig: { _ in TrainConfig(model: ModelConfig(imageSize: 30), iterations: 1) }, say: { _ in })
        ) { error in
            guard case TrainingError.invalidConfig(let problems) = error else { return XCTFail("\(error)") }
            XCTAssertFalse(problems.isEmpty)
        }
    }
}
