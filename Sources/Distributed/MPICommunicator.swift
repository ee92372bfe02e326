import CMPIShim

/// `Communicator` over MPI's `COMM_WORLD`, for processes started by `mpirun`.
///
/// One instance per process is enough (MPI can be initialized only once per process); more
/// instances share the same world. Create it through `makeCommunicator()` unless you
/// specifically want MPI (e.g. a singleton MPI world outside mpirun).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int
    public let processorName: String
    /// Thread support level MPI granted (at least `.serialized`).
    public let threadLevel: MPIThreadLevel

    /// Initializes MPI (`MPI_Init_thread`, `MPI_THREAD_SERIALIZED`) unless already done, and
    /// makes MPI errors come back as codes (`MPI_ERRORS_RETURN`).
    /// - Throws: `MPIError` if MPI was finalized already, grants less than SERIALIZED, or
    ///   the rank/size queries fail. A failure inside `MPI_Init_thread` itself aborts the
    ///   process with MPI's own message (MPI offers no error return before init).
    public init() throws {
        var provided: Int32 = 0
        let initCode = cmpi_init(&provided)
        guard initCode == 0 else {
            throw MPIError(code: initCode, rank: -1, operation: "MPI_Init_thread")
        }
        var r: Int32 = 0
        var n: Int32 = 0
        try MPICommunicator.check(cmpi_rank(&r), rank: -1, "MPI_Comm_rank")
        try MPICommunicator.check(cmpi_size(&n), rank: Int(r), "MPI_Comm_size")
        rank = Int(r)
        worldSize = Int(n)
        threadLevel = MPIThreadLevel(rawValue: provided) ?? .single
        var name = [CChar](repeating: 0, count: 512)
        try MPICommunicator.check(
            cmpi_processor_name(&name, Int32(name.count)), rank: rank,
            "MPI_Get_processor_name")
        processorName = String(cString: name)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try check(
            cmpi_allreduce_sum_float(buffer.baseAddress, Int64(buffer.count)),
            "allReduceSum(Float)")
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        try check(
            cmpi_allreduce_sum_double(buffer.baseAddress, Int64(buffer.count)),
            "allReduceSum(Double)")
    }

    public func allReduceSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>) throws {
        try check(cmpi_allreduce_sum_bf16(buffer.baseAddress, Int64(buffer.count)), "allReduceSum(bfloat16)")
    }

    public func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        let c = counts.map(Int64.init)
        try check(cmpi_reduce_scatter_sum(buffer.baseAddress, c, 0), "reduceScatterSum(Float)")
    }

    public func reduceScatterSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        let c = counts.map(Int64.init)
        try check(cmpi_reduce_scatter_sum(buffer.baseAddress, c, 1), "reduceScatterSum(bfloat16)")
    }

    public func allGather(inPlace buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        let c = counts.map(Int64.init)
        try check(cmpi_allgatherv_float(buffer.baseAddress, c), "allGather(in place, Float)")
    }

    public func gather(
        _ block: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>?, counts: [Int], root: Int
    ) throws {
        try validateRoot(root, worldSize: worldSize, rank: rank, operation: "gather(counts)")
        guard counts.count == worldSize, block.count == counts[rank],
            rank != root || (receive?.count ?? 0) >= counts.reduce(0, +)
        else {
            throw MPIError(
                code: MPIError.invalidArgument, rank: rank, operation: "gather(counts)",
                detail: "counts \(counts), block of \(block.count), receive of \(receive?.count ?? 0)")
        }
        let c = counts.map(Int64.init)
        try check(
            cmpi_gatherv_float(block.baseAddress, rank == root ? receive?.baseAddress : nil, c, Int32(root)),
            "gather(counts)")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try validateRoot(root, worldSize: worldSize, rank: rank, operation: "broadcast")
        try check(
            cmpi_bcast_bytes(buffer.baseAddress, Int64(buffer.count), Int32(root)),
            "broadcast")
    }

    public func gather(
        _ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer?,
        root: Int
    ) throws {
        try validateRoot(root, worldSize: worldSize, rank: rank, operation: "gather")
        if rank == root {
            try validateReceive(
                receive?.count ?? 0, block: block.count, worldSize: worldSize,
                rank: rank, operation: "gather")
        }
        try check(
            cmpi_gather_bytes(
                block.baseAddress, rank == root ? receive?.baseAddress : nil,
                Int64(block.count), Int32(root)), "gather")
    }

    public func allGather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        try validateReceive(
            receive.count, block: block.count, worldSize: worldSize, rank: rank,
            operation: "allGather")
        try check(
            cmpi_allgather_bytes(block.baseAddress, receive.baseAddress, Int64(block.count)),
            "allGather")
    }

    public func barrier() throws {
        try check(cmpi_barrier(), "barrier")
    }

    public func finalize() throws {
        try check(cmpi_finalize(), "MPI_Finalize")
    }

    public func postArrival(sequence: Int) throws {
        try check(cmpi_arrival_post(Int64(sequence)), "arrival notice")
    }

    public func testArrival() throws -> ArrivalStatus {
        var done: Int32 = 0
        var arrived = [Int32](repeating: 0, count: worldSize)
        try check(cmpi_arrival_test(&done, &arrived, Int32(worldSize)), "arrival notice")
        let heard = rank == 0 ? arrived.map { $0 != 0 } : [arrived[0] != 0]
        return ArrivalStatus(done: done != 0, arrived: heard)
    }

    /// The ring's wait between tests of its requests: F2W_MPI_RELAXED_POLL_US (1000 µs) while on, F2W_MPI_POLL_US
    /// (50 µs) while off (CMPIShim.h).
    public func setRelaxedPolling(_ on: Bool) { cmpi_set_relaxed_polling(on ? 1 : 0) }

    public func abort(code: Int32, message: String) -> Never {
        writeRankTagged(message, rank: rank, worldSize: worldSize, host: processorName)
        cmpi_abort(code == 0 ? 1 : code)
    }

    private func check(_ code: Int32, _ operation: String) throws {
        try MPICommunicator.check(code, rank: rank, operation)
    }

    private static func check(_ code: Int32, rank: Int, _ operation: String) throws {
        if code != 0 { throw MPIError(code: code, rank: rank, operation: operation) }
    }
}

/// MPI thread support levels (`MPI_THREAD_*`), ordered.
public enum MPIThreadLevel: Int32, Comparable, Sendable {
    case single = 0
    case funneled = 1
    case serialized = 2
    case multiple = 3

    public static func < (a: MPIThreadLevel, b: MPIThreadLevel) -> Bool { a.rawValue < b.rawValue }
}

// MARK: - Test hooks

extension MPICommunicator {
    /// Sets the most elements (bytes for broadcast/gather) passed to one MPI call, so tests can
    /// force chunking without 2^30-element buffers. Returns the previous value; `n <= 0`
    /// restores the default (1 << 30). Every rank must use the same value.
    static func setChunkElementsForTesting(_ n: Int) -> Int {
        Int(cmpi_test_set_chunk_elements(Int64(n)))
    }

    /// MPI collective calls issued so far by this process (to count chunks).
    static var collectiveCallsForTesting: Int { Int(cmpi_test_collective_calls()) }
}
