import Checkpoint
import Foundation
import Training
import UGATIT
import XCTest

@testable import ADA

/// ADA state that cannot be stored or read back is an error, never a silent restart from the configured p
/// (hardening issue, item 2).
final class ADAStateCheckpointTests: XCTestCase {
    var work = ""
    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-ada-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func save(_ ada: ADAState, to dir: String) throws {
        let m = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 1)
        var state = TrainingCheckpoint.State(step: 3, imagesSeen: 3)
        state.ada = ada
        try TrainingCheckpoint.save(
            root: "\(work)/\(dir)", config: TrainConfig(model: m.config, iterations: 5), model: m, step: nil,
            state: state)
    }

    func testStateRoundTrips() throws {
        let ada = ADAState(p: [0.25, 0.5], signSum: [3, -1], count: [4, 4], lastRt: [0.75, -0.25])
        try save(ada, to: "ok")
        XCTAssertEqual(try TrainingCheckpoint.peek(path: "\(work)/ok").1.ada, ada)
    }

    func testNonFiniteStateIsNotSaved() throws {
        XCTAssertThrowsError(try save(ADAState(p: [.nan, 0.5]), to: "nan")) { e in
            XCTAssertTrue("\(e)".contains("ADA state"), "\(e)")
        }
        XCTAssertThrowsError(try TrainingCheckpoint.peek(path: "\(work)/nan")) { e in
            XCTAssertEqual(e as? CheckpointError, .noCheckpoint(path: "\(work)/nan"), "nothing was written: \(e)")
        }
    }

    func testStateOutsideItsRangeIsRefusedOnLoad() throws {
        try save(ADAState(p: [1.5, 0.5]), to: "bad")  // finite, so it encodes; no trainer can produce it
        XCTAssertThrowsError(try TrainingCheckpoint.peek(path: "\(work)/bad")) { e in
            guard case .manifestCorrupt(_, let reason)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("ADA state"), reason)
        }
    }
}
