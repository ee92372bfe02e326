import CMPIShim
import Foundation
import TestSupport
import XCTest

@testable import Distributed

/// Code that runs on every rank of an mpirun job that a `MultiRankTests` test started on itself (see `MPIJob`).
enum MPIWorkers {
    /// Runs the worker `name` in this rank.
    static func run(_ name: String) throws {
        guard MPIRuntime.isLaunchedByMPIRun() else {
            return XCTFail("\(MPIJob.workerVariable)=\(name) is set, but this process was not started by mpirun")
        }
        let comm = try MPICommunicator()
        switch name {
        case "collectives": try collectives(comm)
        case "watchdog-abort": try watchdogAbort(comm)
        case "abort-on-failure": try abortOnFailure(comm)
        default: XCTFail("unknown worker \(name)")
        }
    }

    static func collectives(_ comm: MPICommunicator) throws {
        let report = WorkerReport(comm)
        CollectiveChecks(comm: comm, report: report).runAll()
        report.check("finalize") {
            try comm.finalize()
            return MPIRuntime.isFinalized ? nil : "MPI_Finalized is false"
        }
        report.done()
        XCTAssertEqual(report.failures, 0)
    }

    /// Rank 0's training thread hangs in a barrier (rank 1 never arrives in time); a watchdog
    /// thread on rank 0 aborts the job while the main thread is still inside MPI.
    static func watchdogAbort(_ comm: MPICommunicator) throws {
        if comm.rank == 0 {
            let watchdog = Thread {
                Thread.sleep(forTimeInterval: 0.3)
                comm.abort(code: 42, message: "watchdog: barrier exceeded 0.3 s")
            }
            watchdog.start()
            WorkerReport(comm).line("entering barrier")
            try comm.barrier()
            WorkerReport(comm).line("barrier returned")
        } else {
            Thread.sleep(forTimeInterval: 30)
            try comm.barrier()
        }
    }

    /// Rank 1 hits an error inside `abortOnFailure`, which must bring down rank 0 as well.
    static func abortOnFailure(_ comm: MPICommunicator) throws {
        if comm.rank == 1 {
            comm.abortOnFailure("gradient all-reduce", code: 13) {
                throw MPIError(
                    code: MPIError.invalidArgument, rank: comm.rank,
                    operation: "allReduceSum(Float)", detail: "injected")
            }
        }
        try comm.barrier()  // rank 0 waits here until the abort kills it
        WorkerReport(comm).line("barrier returned")
    }
}

/// Prints one result line per check, e.g. `F2WMPI rank=1 size=2 check=gather ok`.
final class WorkerReport {
    let comm: Communicator
    private(set) var failures = 0

    init(_ comm: Communicator) { self.comm = comm }

    func line(_ text: String) {
        // One write per line, flushed, so ranks' lines do not interleave or get lost.
        fputs("\(MPIJob.linePrefix)rank=\(comm.rank) size=\(comm.worldSize) \(text)\n", stdout)
        fflush(stdout)
    }

    /// Runs `body`; it returns nil on success or a failure description.
    /// A failure aborts the job (exit 99): later collectives could mismatch and hang.
    func check(_ name: String, _ body: () throws -> String?) {
        let failure: String?
        do { failure = try body() } catch { failure = "threw \(error)" }
        line("check=\(name) " + (failure.map { "FAIL \($0)" } ?? "ok"))
        if let failure {
            failures += 1
            comm.abort(code: 99, message: "worker check \(name) failed: \(failure)")
        }
    }

    func done() { line("done failures=\(failures)") }
}
