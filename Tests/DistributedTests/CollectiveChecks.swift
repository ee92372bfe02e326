import CMPIShim
import Foundation
import TestSupport

@testable import Distributed

/// The checks every rank of the collectives worker runs, with exact expected values.
/// Values are small integers and halves/quarters, so every sum is exact in any order.
struct CollectiveChecks {
    let comm: MPICommunicator
    let report: WorkerReport
    var r: Int { comm.rank }
    var n: Int { comm.worldSize }

    /// Names of the checks, in order, as printed by `runAll` (plus "finalize" by the worker).
    static let names = [
        "world", "allreduce-float", "allreduce-large", "allreduce-relaxed", "allreduce-bf16-large", "reduce-scatter",
        "allgather-inplace",
        "gather-counts", "allreduce-double", "allreduce-buffer", "broadcast-root0",
        "broadcast-root1", "broadcast-bytes", "gather", "allgather", "barrier",
        "chunked-allreduce", "chunked-broadcast", "chunked-gather", "errors-return", "tcp-flags",
    ]

    func runAll() {
        report.check("world", world)
        report.check("allreduce-float", allReduceFloat)
        report.check("allreduce-large", allReduceLarge)
        report.check("allreduce-relaxed", allReduceRelaxed)
        report.check("allreduce-bf16-large", allReduceBF16Large)
        report.check("reduce-scatter", reduceScatter)
        report.check("allgather-inplace", allGatherInPlace)
        report.check("gather-counts", gatherCounts)
        report.check("allreduce-double", allReduceDouble)
        report.check("allreduce-buffer", allReduceBuffer)
        report.check("broadcast-root0") { try broadcastArray(root: 0) }
        report.check("broadcast-root1") { try broadcastArray(root: 1) }
        report.check("broadcast-bytes", broadcastBytes)
        report.check("gather", gather)
        report.check("allgather", allGather)
        report.check("barrier", barrier)
        let previous = MPICommunicator.setChunkElementsForTesting(1000)
        report.check("chunked-allreduce", chunkedAllReduce)
        report.check("chunked-broadcast", chunkedBroadcast)
        report.check("chunked-gather", chunkedGather)
        _ = MPICommunicator.setChunkElementsForTesting(previous)
        report.check("errors-return", errorsReturn)
        report.check("tcp-flags", tcpFlags)
    }

    /// cmpi_init gave Open MPI's TCP transport its flags without "put" where the job's environment set none, and
    /// Open MPI took them: its control variable btl_tcp_flags holds send | in-place | need-ack | need-csum
    /// (0x1 | 0x8 | 0x10 | 0x20, Open MPI's MCA_BTL_FLAGS_* bits), without put (0x2).
    func tcpFlags() throws -> String? {
        guard let ours = cmpi_tcp_flags_default().map({ String(cString: $0) }) else { return nil }  // not Open MPI
        guard cmpi_tcp_flags_set_by_init() == 1 else { return nil }  // the user's own value: left alone
        let seen = ProcessInfo.processInfo.environment["OMPI_MCA_btl_tcp_flags"]
        guard seen == ours else { return "OMPI_MCA_btl_tcp_flags=\(seen ?? "unset"), expected \(ours)" }
        var flags: Int64 = 0
        let rc = cmpi_cvar_read_integer("btl_tcp_flags", &flags)
        guard rc == 0 else { return "btl_tcp_flags not readable through MPI_T (error \(rc))" }
        return flags == 0x39 ? nil : "btl_tcp_flags = 0x\(String(flags, radix: 16)), expected 0x39"
    }

    func world() throws -> String? {
        let expected = Int(ProcessInfo.processInfo.environment[MPIJob.processCountVariable] ?? "")
        guard n == expected, (0..<n).contains(r) else { return "rank \(r) of \(n), expected np \(expected ?? -1)" }
        guard MPIRuntime.isInitialized, comm.threadLevel >= .serialized else { return "init/thread level" }
        let ranks = try comm.allGather([UInt8(r)])
        return ranks == (0..<n).map { [UInt8($0)] } ? nil : "ranks \(ranks)"
    }

    /// Element i on rank r: (r+1)*i + r/2. Sum: i*n(n+1)/2 + n(n-1)/4.
    func floatValues(count: Int, rank: Int) -> [Float] {
        (0..<count).map { Float(rank + 1) * Float($0 % 1000) + Float(rank) * 0.5 }
    }

    func expectedFloatSums(count: Int) -> [Float] {
        (0..<count).map { Float($0 % 1000) * Float(n * (n + 1) / 2) + Float(n * (n - 1)) * 0.25 }
    }

    /// Element i on rank r: i*1000003*(r+1) + r/4 (needs double precision to be exact).
    func doubleValues(count: Int, rank: Int) -> [Double] {
        (0..<count).map { Double($0) * 1_000_003 * Double(rank + 1) + 0.25 * Double(rank) }
    }

    func expectedDoubleSums(count: Int) -> [Double] {
        (0..<count).map { Double($0) * 1_000_003 * Double(n * (n + 1) / 2) + 0.25 * Double(n * (n - 1) / 2) }
    }

    func allReduceFloat() throws -> String? {
        var values = floatValues(count: 1001, rank: r)
        try comm.allReduceSum(&values)
        return values == expectedFloatSums(count: 1001) ? nil : "sums differ, first \(values.prefix(3))"
    }

    /// Above CMPI_RING_MIN_ELEMENTS the shim runs reduce-scatter + all-gather: the same exact sums on every rank,
    /// with a count that does not divide by the world size.
    func allReduceLarge() throws -> String? {
        let count = Int(CMPI_RING_MIN_ELEMENTS) * 3 + 7
        var values = floatValues(count: count, rank: r)
        try comm.allReduceSum(&values)
        return values == expectedFloatSums(count: count) ? nil : "sums differ, first \(values.prefix(3))"
    }

    /// The ring with relaxed polling (`setRelaxedPolling`): the same exact sums; its nap 1000 µs, then back to 50 µs
    /// (the defaults, unless F2W_MPI_POLL_US or F2W_MPI_RELAXED_POLL_US set others).
    func allReduceRelaxed() throws -> String? {
        comm.setRelaxedPolling(true)
        defer { comm.setRelaxedPolling(false) }
        let relaxed = cmpi_poll_interval_now_us()
        let count = Int(CMPI_RING_MIN_ELEMENTS) * 3 + 7
        var values = floatValues(count: count, rank: r)
        try comm.allReduceSum(&values)
        comm.setRelaxedPolling(false)
        let normal = cmpi_poll_interval_now_us()
        let env = ProcessInfo.processInfo.environment
        let defaults = env["F2W_MPI_POLL_US"] == nil && env["F2W_MPI_RELAXED_POLL_US"] == nil
        if defaults ? (relaxed, normal) != (1000, 50) : relaxed < normal {
            return "poll intervals \(relaxed) µs relaxed, \(normal) µs not"
        }
        return values == expectedFloatSums(count: count) ? nil : "sums differ, first \(values.prefix(3))"
    }

    /// bfloat16 above the threshold: small integers are exact in bfloat16 and their sums stay exact.
    func allReduceBF16Large() throws -> String? {
        let count = Int(CMPI_RING_MIN_ELEMENTS) + 5
        let mine = (0..<count).map { Float(($0 % 7) * (r + 1)) }
        var h = [UInt16](repeating: 0, count: count)
        mine.withUnsafeBufferPointer { src in h.withUnsafeMutableBufferPointer { BFloat16.encode(src, into: $0) } }
        try h.withUnsafeMutableBufferPointer { try comm.allReduceSumBF16($0) }
        var out = [Float](repeating: 0, count: count)
        h.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { BFloat16.decode(src, into: $0) } }
        let expected = (0..<count).map { Float(($0 % 7) * n * (n + 1) / 2) }
        return out == expected ? nil : "bfloat16 sums differ, first \(out.prefix(3))"
    }

    /// Blocks of 3, 0, 5, ... elements: each rank's own block holds the sum afterwards.
    func blockCounts() -> [Int] { (0..<n).map { $0 == 1 ? 0 : 3 + 2 * $0 } }

    func reduceScatter() throws -> String? {
        let counts = blockCounts()
        let total = counts.reduce(0, +)
        var values = floatValues(count: total, rank: r)
        try values.withUnsafeMutableBufferPointer { try comm.reduceScatterSum($0, counts: counts) }
        let start = counts[..<r].reduce(0, +)
        let mine = Array(values[start..<(start + counts[r])])
        let expected = Array(expectedFloatSums(count: total)[start..<(start + counts[r])])
        return mine == expected ? nil : "block of rank \(r): \(mine), expected \(expected)"
    }

    func allGatherInPlace() throws -> String? {
        let counts = blockCounts()
        let total = counts.reduce(0, +)
        var values = [Float](repeating: -1, count: total)
        let start = counts[..<r].reduce(0, +)
        for i in 0..<counts[r] { values[start + i] = Float(r * 100 + i) }
        try values.withUnsafeMutableBufferPointer { try comm.allGather(inPlace: $0, counts: counts) }
        let expected = (0..<n).flatMap { q in (0..<counts[q]).map { Float(q * 100 + $0) } }
        return values == expected ? nil : "\(values), expected \(expected)"
    }

    func gatherCounts() throws -> String? {
        let counts = blockCounts()
        let mine = (0..<counts[r]).map { Float(r * 100 + $0) }
        let root = n - 1
        var all = [Float](repeating: -1, count: r == root ? counts.reduce(0, +) : 0)
        try mine.withUnsafeBufferPointer { b in
            try all.withUnsafeMutableBufferPointer { try comm.gather(b, into: r == root ? $0 : nil, counts: counts, root: root) }
        }
        guard r == root else { return nil }
        let expected = (0..<n).flatMap { q in (0..<counts[q]).map { Float(q * 100 + $0) } }
        return all == expected ? nil : "\(all), expected \(expected)"
    }

    func allReduceDouble() throws -> String? {
        var values = doubleValues(count: 1001, rank: r)
        try comm.allReduceSum(&values)
        return values == expectedDoubleSums(count: 1001) ? nil : "sums differ, first \(values.prefix(3))"
    }

    func allReduceBuffer() throws -> String? {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 17)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: Float(r + 1))
        try comm.allReduceSum(buffer)
        try comm.allReduceSum(UnsafeMutableBufferPointer<Double>(start: nil, count: 0))
        let expected = Float(n * (n + 1) / 2)
        return buffer.allSatisfy { $0 == expected } ? nil : "got \(buffer[0]), expected \(expected)"
    }

    func broadcastArray(root: Int) throws -> String? {
        var values: [Double] =
            r == root ? (0..<100).map { Double($0 * 7 + root) + 0.5 } : Array(repeating: -1, count: 100)
        try comm.broadcast(&values, root: root)
        var scalar: Int64 = r == root ? 1234 + Int64(root) : 0
        try comm.broadcast(&scalar, root: root)
        guard scalar == 1234 + Int64(root) else { return "scalar \(scalar)" }
        return values == (0..<100).map { Double($0 * 7 + root) + 0.5 } ? nil : "values \(values.prefix(3))"
    }

    func broadcastBytes() throws -> String? {
        let message = Array("hello from rank 1".utf8)
        let got = try comm.broadcastBytes(r == 1 ? message : Array(repeating: 9, count: r), root: 1)
        return got == message ? nil : "got \(got)"
    }

    func block(rank: Int, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: rank * 31 + $0) }
    }

    func gather() throws -> String? {
        for root in [0, n - 1] {
            let got = try comm.gather(block(rank: r, size: 24), root: root)
            let expected = r == root ? (0..<n).map { block(rank: $0, size: 24) } : []
            if got != expected { return "root \(root): got \(got.map(\.count)) blocks" }
        }
        return nil
    }

    func allGather() throws -> String? {
        let got = try comm.allGather(block(rank: r, size: 24))
        return got == (0..<n).map { block(rank: $0, size: 24) } ? nil : "blocks differ"
    }

    /// The last rank arrives 0.2 s late; no rank may leave before every rank has entered.
    func barrier() throws -> String? {
        if r == n - 1 { Thread.sleep(forTimeInterval: 0.2) }
        let entered = monotonicSeconds()
        try comm.barrier()
        let left = monotonicSeconds()
        var times = [Double](repeating: 0, count: 2 * n)
        let mine = [entered, left]
        try mine.withUnsafeBytes { send in
            try times.withUnsafeMutableBytes { try comm.allGather(send, into: $0) }
        }
        let lastEntry = stride(from: 0, to: 2 * n, by: 2).map { times[$0] }.max()!
        let firstExit = stride(from: 1, to: 2 * n, by: 2).map { times[$0] }.min()!
        return firstExit >= lastEntry ? nil : "a rank left at \(firstExit) before the last entered at \(lastEntry)"
    }

    /// Chunk limit is 1000 here: 2507 floats take 3 calls and 2000 doubles take 2.
    func chunkedAllReduce() throws -> String? {
        let before = MPICommunicator.collectiveCallsForTesting
        var floats = floatValues(count: 2507, rank: r)
        try comm.allReduceSum(&floats)
        var doubles = doubleValues(count: 2000, rank: r)
        try comm.allReduceSum(&doubles)
        let calls = MPICommunicator.collectiveCallsForTesting - before
        guard calls == 5 else { return "\(calls) MPI calls, expected 5" }
        guard floats == expectedFloatSums(count: 2507) else { return "float sums differ" }
        return doubles == expectedDoubleSums(count: 2000) ? nil : "double sums differ"
    }

    /// 10007 bytes from root 1 in chunks of 1000: 11 calls, the last one partial.
    func chunkedBroadcast() throws -> String? {
        let before = MPICommunicator.collectiveCallsForTesting
        let pattern = block(rank: 5, size: 10_007)
        var bytes = r == 1 ? pattern : [UInt8](repeating: 0, count: 10_007)
        try comm.broadcast(&bytes, root: 1)
        let calls = MPICommunicator.collectiveCallsForTesting - before
        guard calls == 11 else { return "\(calls) MPI calls, expected 11" }
        return bytes == pattern ? nil : "bytes differ"
    }

    /// Blocks above the chunk limit go as one derived datatype: 2503 = 2 chunks + 503 bytes,
    /// 2000 = exactly 2 chunks; 999 bytes is below the limit.
    func chunkedGather() throws -> String? {
        let gathered = try comm.gather(block(rank: r, size: 2503), root: 0)
        if r == 0, gathered != (0..<n).map({ block(rank: $0, size: 2503) }) { return "gather 2503 differs" }
        for size in [2000, 999] {
            let got = try comm.allGather(block(rank: r, size: size))
            if got != (0..<n).map({ block(rank: $0, size: size) }) { return "allGather \(size) differs" }
        }
        return nil
    }

    /// MPI_ERRORS_RETURN: an invalid root comes back as a code, and the world stays usable.
    func errorsReturn() throws -> String? {
        var byte: UInt8 = 0
        let code = cmpi_bcast_bytes(&byte, 1, Int32(n + 5))
        guard code != 0 else { return "MPI accepted an invalid root" }
        let error = MPIError(code: code, rank: r, operation: "broadcast")
        guard error.message.lowercased().contains("root") else { return "message: \(error.message)" }
        do {
            try comm.broadcast(&byte, root: n)
            return "Swift broadcast accepted root \(n)"
        } catch let error as MPIError where error.code == MPIError.invalidArgument {}
        try comm.barrier()
        return nil
    }

    private func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
