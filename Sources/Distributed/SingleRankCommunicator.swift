import CMPIShim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A world of one process, without MPI: all-reduce is the identity, broadcast from root 0
/// is a no-op, gather and all-gather return the own block. Argument checks match
/// `MPICommunicator` (e.g. root must be 0), and so does finalize: afterwards every operation throws
/// `MPIError.notInitialized` and a second finalize does nothing, so code tested here behaves the same under MPI.
public final class SingleRankCommunicator: Communicator, @unchecked Sendable {
    public let rank = 0
    public let worldSize = 1
    public let processorName: String
    // Like MPI's own state: written by finalize on the thread that owns the communicator.
    private var finalized = false

    private func live(_ operation: String) throws {
        guard !finalized else {
            throw MPIError(
                code: MPIError.notInitialized, rank: 0, operation: operation, detail: "called after finalize")
        }
    }

    public init() {
        var name = [CChar](repeating: 0, count: 256)
        processorName = gethostname(&name, name.count - 1) == 0 ? String(cString: name) : "localhost"
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try live("allReduceSum") }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws { try live("allReduceSum") }
    public func allReduceSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>) throws { try live("allReduceSum") }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try live("broadcast")
        try validateRoot(root, worldSize: 1, rank: 0, operation: "broadcast")
    }

    public func gather(
        _ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer?,
        root: Int
    ) throws {
        try live("gather")
        try validateRoot(root, worldSize: 1, rank: 0, operation: "gather")
        try validateReceive(
            receive?.count ?? 0, block: block.count, worldSize: 1, rank: 0,
            operation: "gather")
        if let receive, block.count > 0 { receive.copyMemory(from: block) }
    }

    public func allGather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        try live("allGather")
        try validateReceive(
            receive.count, block: block.count, worldSize: 1, rank: 0,
            operation: "allGather")
        if block.count > 0 { receive.copyMemory(from: block) }
    }

    public func barrier() throws { try live("barrier") }
    public func finalize() throws { finalized = true }

    public func abort(code: Int32, message: String) -> Never {
        writeRankTagged(message, rank: 0, worldSize: 1, host: processorName)
        cmpi_abort(code == 0 ? 1 : code)  // MPI is not running: flushes stdio and _exit(code)
    }
}

// MARK: - Argument checks shared by both communicators

func validateRoot(_ root: Int, worldSize: Int, rank: Int, operation: String) throws {
    guard (0..<worldSize).contains(root) else {
        throw MPIError(
            code: MPIError.invalidArgument, rank: rank, operation: operation,
            detail: "root \(root) is outside 0..<\(worldSize)")
    }
}

func validateReceive(_ count: Int, block: Int, worldSize: Int, rank: Int, operation: String) throws {
    guard count == block * worldSize else {
        throw MPIError(
            code: MPIError.invalidArgument, rank: rank, operation: operation,
            detail: "receive buffer has \(count) bytes, needs \(worldSize) x \(block)")
    }
}
