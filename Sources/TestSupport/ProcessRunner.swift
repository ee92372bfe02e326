import Foundation

/// Runs a program to completion for black-box tests (the `face2webtoon` binary, mpirun), with a deadline.
public enum ProcessRunner {
    public struct Result {
        public let exitCode: Int32
        /// stdout and stderr, interleaved.
        public let output: String
        public let seconds: Double
        public let timedOut: Bool
    }

    /// The built `face2webtoon` executable next to the running test bundle (`swift build --build-tests` builds it).
    public static func face2webtoonBinary() -> String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("face2webtoon")
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// `name` found on PATH, or nil.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Runs `arguments[0]` with the rest as arguments; kills it (SIGTERM, then SIGKILL) after `timeout` seconds.
    /// `onStart` receives the PID once the process runs.
    public static func run(
        _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 120,
        onStart: ((Int32) -> Void)? = nil
    ) throws -> Result {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("f2w-run-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let out = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: arguments[0])
        p.arguments = Array(arguments.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for (k, v) in extra { env[k] = v }
        p.environment = env
        p.standardOutput = out
        p.standardError = out
        let start = Date()
        try p.run()
        onStart?(p.processIdentifier)
        var timedOut = false
        while p.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                p.terminate()
                Thread.sleep(forTimeInterval: 2)
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        p.waitUntilExit()
        try out.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Result(
            exitCode: p.terminationStatus, output: text, seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }
}
