#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Communicator {
    /// `"[rank 1/4 host]"`: the prefix used for this rank's log lines.
    public var rankTag: String { "[rank \(rank)/\(worldSize) \(processorName)]" }

    /// Runs `body` (typically a collective during training); if it throws, logs the error
    /// tagged with this rank and aborts the **whole job** with exit status `code`.
    ///
    /// Why not rethrow: after a failed collective the ranks disagree on where they are in the
    /// sequence of collectives, so no rank can continue safely. Aborting (MPI_Abort) ends all
    /// ranks promptly; resuming is the job of the outer restart loop and the checkpoints.
    public func abortOnFailure<T>(
        _ context: @autoclosure () -> String, code: Int32 = 1,
        _ body: () throws -> T
    ) -> T {
        do {
            return try body()
        } catch {
            abort(code: code, message: "fatal: \(context()) failed: \(error)")
        }
    }
}

/// Writes "[rank r/N host] message" to standard error in a single write, so lines from
/// concurrent ranks sharing one terminal do not interleave mid-line.
func writeRankTagged(_ message: String, rank: Int, worldSize: Int, host: String) {
    let line = "[rank \(rank)/\(worldSize) \(host)] \(message)\n"
    let bytes = Array(line.utf8)
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(2, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}
