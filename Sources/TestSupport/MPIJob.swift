import Foundation
import XCTest

/// Launches this test bundle under `mpirun` to run a worker on several ranks.
/// Shared by the test targets that run workers under mpirun (DistributedTests, CheckpointTests).
///
/// How it works: on Linux the XCTest bundle is a plain executable that accepts a test filter
/// argument (`DistributedTests.MultiRankTests/testCollectivesOnTwoRanks`). A test starts
/// `mpirun -np N <this executable> <its own name>` with `F2W_MPI_TEST_WORKER=<worker name>` set: in the ranks the
/// same test finds `MPIJob.worker` set, runs that worker instead of launching, and returns. So no test exists only to
/// be run by another one, and a skipped test always means something is missing. Workers print lines starting with
/// `F2WMPI ` that the launching test parses.
public enum MPIJob {
    /// Names the worker test that should run for real in the spawned ranks.
    public static let workerVariable = "F2W_MPI_TEST_WORKER"
    /// The `-np` the launcher used, so workers can check `worldSize`.
    public static let processCountVariable = "F2W_MPI_TEST_NP"
    /// Prefix of the result lines printed by workers.
    public static let linePrefix = "F2WMPI "

    public struct Result {
        public let exitCode: Int32
        public let output: String  // stdout and stderr of mpirun and all ranks, interleaved
        public let seconds: Double
        public let timedOut: Bool

        /// Worker result lines: what follows the prefix. A worker writes each line in one write(2), which a pipe
        /// keeps whole, but another rank's unfinished line can come before it: a clean-clone CI run saw
        /// "\tF2WMPI rank=2 …", the tab of another rank's XCTest summary, and lost the line when only lines that
        /// begin with the prefix counted.
        public var workerLines: [String] {
            output.split(separator: "\n").compactMap { line in
                line.range(of: MPIJob.linePrefix).map { String(line[$0.upperBound...]) }
            }
        }
    }

    /// The worker this process must run: set in the ranks (or the child process) a test started on itself, nil in
    /// a normal test run.
    public static var worker: String? { ProcessInfo.processInfo.environment[workerVariable] }

    /// The filter that runs `testCase` alone: `Module.Class/testMethod`.
    public static func filter(for testCase: XCTestCase) -> String {
        let method = testCase.name.split(whereSeparator: { $0 == "." || $0 == " " || $0 == "[" || $0 == "]" })
            .last.map(String.init) ?? testCase.name
        return "\(String(reflecting: type(of: testCase)))/\(method)"
    }

    /// Runs `testCase` again on `processes` ranks with `worker` named in the environment (see above).
    public static func run(
        _ testCase: XCTestCase, worker: String, processes: Int, environment extra: [String: String] = [:],
        timeout: Double = 60
    ) throws -> Result {
        try run(filter: filter(for: testCase), worker: worker, processes: processes, environment: extra, timeout: timeout)
    }

    /// The `mpirun` on PATH, or nil.
    public static func findMPIRun() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/mpirun" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Path of the running test executable (the `.xctest` file on Linux).
    public static func testExecutable() -> String? {
        #if os(Linux)
            // /proc/self/exe is exact even when argv[0] is relative or a wrapper started us.
            return try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #else
            return nil  // macOS runs bundles through `xctest`; not supported here
        #endif
    }

    /// Runs the test `filter` on `processes` ranks with `worker` set and waits at most `timeout` seconds.
    static func run(
        filter: String, worker: String, processes: Int, environment extra: [String: String], timeout: Double
    ) throws -> Result {
        guard let mpirun = findMPIRun() else {
            throw XCTSkip("mpirun not found on PATH (install openmpi-bin)")
        }
        guard let executable = testExecutable() else {
            throw XCTSkip("multi-rank tests need the Linux XCTest executable")
        }
        let outputURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("f2w-mpi-\(worker)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        // A file, not a pipe: nothing can block on a full pipe while we wait.
        let output = try FileHandle(forWritingTo: outputURL)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments =
            [
                "--allow-run-as-root", "--oversubscribe", "-np", "\(processes)",
                // Job-wide limit inside mpirun too (exit 110), so ranks are cleaned up on a hang.
                "--timeout", "\(Int(timeout) - 5)",
                // Shared-memory copies without CMA: CMA needs ptrace rights that containers lack.
                "--mca", "btl_vader_single_copy_mechanism", "none",
                "-x", workerVariable, "-x", processCountVariable,
            ] + extra.keys.sorted().flatMap { ["-x", $0] } + [
                executable, filter,
            ]
        var environment = ProcessInfo.processInfo.environment
        environment[workerVariable] = worker
        environment[processCountVariable] = "\(processes)"
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        for (k, v) in extra { environment[k] = v }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output

        let start = Date()
        try process.run()
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                process.terminate()  // SIGTERM: mpirun then kills its ranks
                let grace = Date()
                while process.isRunning && Date().timeIntervalSince(grace) < 5 { usleep(50_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        try output.close()
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return Result(
            exitCode: process.terminationStatus, output: text,
            seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }
}
