import TestSupport
import XCTest

@testable import Distributed

/// Real multi-rank runs: each test starts `mpirun` on itself (see `MPIJob`); in the ranks it runs its worker.
final class MultiRankTests: XCTestCase {
    func testCollectivesOnTwoRanks() throws {
        if let w = MPIJob.worker { return try MPIWorkers.run(w) }
        try checkCollectives(processes: 2)
    }

    func testCollectivesOnThreeRanksOversubscribed() throws {
        if let w = MPIJob.worker { return try MPIWorkers.run(w) }
        try checkCollectives(processes: 3)
    }

    func testWatchdogAbortFromAnotherThreadEndsTheJob() throws {
        if let w = MPIJob.worker { return try MPIWorkers.run(w) }
        let result = try MPIJob.run(self, worker: "watchdog-abort", processes: 2)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.exitCode, 42, "mpirun should exit with the abort code\n\(result.output)")
        XCTAssertLessThan(result.seconds, 20, "rank 1 sleeps 30 s; the abort must not wait for it")
        XCTAssertTrue(result.output.contains("] watchdog: barrier exceeded 0.3 s"), result.output)
        XCTAssertTrue(result.output.contains("[rank 0/2 "), result.output)
        XCTAssertFalse(result.output.contains("barrier returned"), result.output)
    }

    func testAbortOnFailureEndsTheJob() throws {
        if let w = MPIJob.worker { return try MPIWorkers.run(w) }
        let result = try MPIJob.run(self, worker: "abort-on-failure", processes: 2)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.exitCode, 13, result.output)
        XCTAssertTrue(
            result.output.contains(
                "fatal: gradient all-reduce failed: MPI error -1004 in allReduceSum(Float) on rank 1"),
            result.output)
        XCTAssertTrue(result.output.contains("[rank 1/2 "), result.output)
        XCTAssertFalse(result.output.contains("barrier returned"), result.output)
    }

    private func checkCollectives(processes: Int) throws {
        let result = try MPIJob.run(self, worker: "collectives", processes: processes)
        XCTAssertFalse(result.timedOut, "mpirun timed out\n\(result.output)")
        XCTAssertEqual(result.exitCode, 0, result.output)
        let lines = result.workerLines
        for rank in 0..<processes {
            let prefix = "rank=\(rank) size=\(processes) "
            let checks = lines.filter { $0.hasPrefix(prefix + "check=") }
            let expected = (CollectiveChecks.names + ["finalize"]).map { prefix + "check=\($0) ok" }
            XCTAssertEqual(checks, expected, "rank \(rank)\n\(result.output)")
            XCTAssertTrue(lines.contains(prefix + "done failures=0"), "rank \(rank)\n\(result.output)")
        }
    }
}
