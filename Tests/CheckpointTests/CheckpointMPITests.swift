import Distributed
import Engine
import Foundation
import TestSupport
import XCTest

@testable import Checkpoint

/// Real multi-rank saves and loads under `mpirun` (see `MPIJob`): each test starts jobs on itself whose ranks run
/// the workers in `CheckpointMPIWorkers`.
final class CheckpointMPITests: XCTestCase {
    private func job(_ worker: String, _ np: Int, root: String) throws -> MPIJob.Result {
        let result = try MPIJob.run(
            self, worker: worker, processes: np, environment: [CheckpointMPIWorkers.rootVariable: root])
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.exitCode, 0, result.output)
        return result
    }

    /// The `error=` lines of a 2-rank job of `worker`, one per rank, or a failure.
    private func errorsOf(_ worker: String, root: String) throws -> [String] {
        let result = try job(worker, 2, root: root)
        let errors = result.workerLines.filter { $0.contains(" error=") }
        XCTAssertEqual(errors.count, 2, result.output)
        return errors
    }

    func testTwoRanksSaveOwnShardsThenLoadOnOneAndThreeRanks() throws {
        if let w = MPIJob.worker { return try CheckpointMPIWorkers.run(w) }
        let root = makeTemporaryDirectory(self, "mpi")
        let saved = try job("save", 2, root: root)
        XCTAssertEqual(saved.workerLines.filter { $0.contains(" saved ") }.count, 2, saved.output)

        let r = try Checkpoints.open(root)
        XCTAssertEqual(r.manifest.worldSize, 2)
        let dir = Checkpoints.stepDirectory(root: root, step: 1)
        for rank in 0..<2 {
            XCTAssertTrue(
                saved.workerLines.contains("rank=\(rank) saved raw=\(r.manifest.shards[rank].uncompressedBytes)"),
                saved.output)
            XCTAssertEqual(r.manifest.shards[rank].file, (try shardFile(dir, rank: rank) as NSString).lastPathComponent)
        }
        let raw = r.manifest.shards.map(\.uncompressedBytes)
        XCTAssertLessThanOrEqual(
            raw.max()! - raw.min()!, CheckpointMPIWorkers.tensors().map(\.byteCount).max()!, "balanced: \(raw)")
        XCTAssertGreaterThan(raw.min()!, 0)

        // Single process, no MPI.
        try r.verify()
        for t in CheckpointMPIWorkers.tensors() {
            XCTAssertEqual(try r.bytes(t.name), t.withBytes { Array($0) }, t.name)
        }
        // Three ranks, oversubscribed.
        let loaded = try job("load", 3, root: root)
        XCTAssertEqual(Set(loaded.workerLines.filter { $0.hasSuffix("loaded ok step=1") }).count, 3, loaded.output)
    }

    func testOneRankFailingGivesBothRanksTheSameMapAndKeepsLatest() throws {
        if let w = MPIJob.worker { return try CheckpointMPIWorkers.run(w) }
        let root = makeTemporaryDirectory(self, "mpi")
        let errors = try errorsOf("failure", root: root)
        let messages = Set(errors.map { $0.components(separatedBy: " error=")[1] })
        XCTAssertEqual(messages.count, 1, "ranks disagree: \(errors)")
        let message = try XCTUnwrap(messages.first)
        XCTAssertTrue(message.hasPrefix("checkpoint save failed (any earlier checkpoint is kept): rank 1: "), message)
        XCTAssertTrue(message.contains("No space left on device"), message)
        XCTAssertFalse(message.contains("rank 0:"), message)
        XCTAssertEqual(latest(root), "step_00000001")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: Checkpoints.stepDirectory(root: root, step: 2) + "/manifest.json"))
        try Checkpoints.open(root).verify()
    }

    /// Ranks whose result folders are not one shared folder (rank 1 writes into a folder of its own, as hosts with
    /// local disks do): the save fails on both ranks naming the shard rank 0 cannot see, and writes no manifest.
    func testAShardRankZeroCannotSeeFailsTheSave() throws {
        if let w = MPIJob.worker { return try CheckpointMPIWorkers.run(w) }
        let root = makeTemporaryDirectory(self, "mpi")
        let errors = try errorsOf("unshared", root: root)
        XCTAssertTrue(
            errors.allSatisfy { $0.contains("rank 1: its shard shard-00001-of-00002") && $0.contains("one shared result folder") },
            "\(errors)")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: Checkpoints.stepDirectory(root: root, step: 1) + "/manifest.json"))
        XCTAssertNil(latest(root))
    }
}

/// Code that runs on every rank of a job that a `CheckpointMPITests` test started on itself.
enum CheckpointMPIWorkers {
    static let rootVariable = "F2W_CKPT_MPI_ROOT"

    /// Tensors every rank holds (data parallel): the same values on every rank and in the launcher.
    static func tensors() -> [CheckpointTensor] {
        var rng = RandomGenerator(seed: 21)
        return (0..<9).map { CheckpointTensor("w\($0)", rng.normalTensor([2000 * ($0 + 1)], std: 0.02)) } + [
            CheckpointTensor("steps", int64: [4])
        ]
    }

    /// Runs the worker `name` in this rank.
    static func run(_ name: String) throws {
        guard MPIRuntime.isLaunchedByMPIRun(), let root = ProcessInfo.processInfo.environment[rootVariable] else {
            return XCTFail("worker \(name): not started by mpirun with \(rootVariable)")
        }
        let comm = try MPICommunicator()
        switch name {
        case "save": try save(comm, root)
        case "failure": try failure(comm, root)
        case "load": try load(comm, root)
        case "unshared": try unshared(comm, root)
        default: XCTFail("unknown worker \(name)")
        }
    }

    static func line(_ comm: Communicator, _ text: String) {
        fputs("\(MPIJob.linePrefix)rank=\(comm.rank) \(text)\n", stdout)
        fflush(stdout)
    }

    static func save(_ comm: MPICommunicator, _ root: String) throws {
        let r = try Checkpoints.save(
            root: root, step: 1, tensors: tensors(), manifestFields: sampleFields(), comm: comm, options: smallChunks)
        line(comm, "saved raw=\(r.localRawBytes)")
        try comm.finalize()
    }

    static func failure(_ comm: MPICommunicator, _ root: String) throws {
        try Checkpoints.save(
            root: root, step: 1, tensors: tensors(), manifestFields: sampleFields(), comm: comm, options: smallChunks)
        if comm.rank == 1 { FaultInjection.writeFault = { path, _, _ in path.hasSuffix(".shard.tmp") ? ENOSPC : nil } }
        do {
            try Checkpoints.save(
                root: root, step: 2, tensors: tensors(), manifestFields: sampleFields(), comm: comm,
                options: smallChunks)
            line(comm, "saved step 2 unexpectedly")
        } catch {
            line(comm, "error=\(error)")
        }
        try comm.finalize()
    }

    static func unshared(_ comm: MPICommunicator, _ root: String) throws {
        do {
            try Checkpoints.save(
                root: comm.rank == 0 ? root : root + "-rank1", step: 1, tensors: tensors(),
                manifestFields: sampleFields(), comm: comm, options: smallChunks)
            line(comm, "saved unexpectedly")
        } catch {
            line(comm, "error=\(error)")
        }
        try comm.finalize()
    }

    static func load(_ comm: MPICommunicator, _ root: String) throws {
        let r = try Checkpoints.open(root)
        try r.verify()
        for t in tensors() where try r.bytes(t.name) != t.withBytes({ Array($0) }) {
            line(comm, "mismatch \(t.name)")
        }
        line(comm, "size=\(comm.worldSize) loaded ok step=\(r.manifest.step)")
        try comm.finalize()
    }
}
