import CMPIShim

/// A group of cooperating processes ("ranks") that run the same training loop.
///
/// Collectives (everything except `rank`, `worldSize`, `processorName` and `abort`) must be
/// called by **every** rank, in the **same order**, with the **same sizes**; otherwise the
/// job hangs or fails. They must not be called concurrently from several threads (MPI is
/// initialized at `MPI_THREAD_SERIALIZED`). `abort(code:message:)` may be called from any
/// thread at any time, e.g. by a watchdog.
///
/// All collectives throw `MPIError`. During training such an error is unrecoverable; use
/// `abortOnFailure(_:code:_:)` to log it with the rank and bring the whole job down.
public protocol Communicator: AnyObject, Sendable {
    /// This process's rank, in `0 ..< worldSize`. Rank 0 is the coordinator by convention.
    var rank: Int { get }
    /// Number of ranks in the job (>= 1).
    var worldSize: Int { get }
    /// Name of the host this rank runs on (`MPI_Get_processor_name`), for log messages.
    var processorName: String { get }

    /// Replaces each element with its sum over all ranks, in place.
    /// Every rank must pass the same `count`. The sum order is MPI's: results are identical
    /// on all ranks, but not necessarily bit-equal to a sequential sum.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Double-precision variant of `allReduceSum(_:)` (use for statistics and counters).
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// In-place sum of bfloat16 values (`BFloat16`): each pairwise sum in float32, rounded to bfloat16; half the bytes
    /// of the float32 all-reduce (`train --grad-wire bf16`).
    func allReduceSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>) throws

    /// Copies `buffer` of rank `root` into `buffer` on every other rank.
    /// Every rank must pass a buffer of the same byte count. Throws for a root outside
    /// `0 ..< worldSize`.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws

    /// Collects one block of `block.count` bytes from every rank at `root`.
    /// At `root`, `receive` must hold `worldSize * block.count` bytes and gets the blocks in
    /// rank order; on other ranks it is ignored and may be nil. Every rank must pass the same
    /// block size.
    func gather(
        _ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer?,
        root: Int) throws

    /// Like `gather`, but every rank receives all blocks: `receive` holds
    /// `worldSize * block.count` bytes on every rank.
    func allGather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws

    /// Reduce-scatter (sum) in place, for the sharded optimizer (ZeRO stage 1): `buffer` is split into per-rank
    /// blocks of `counts[r]` elements, back to back in rank order (`counts.count == worldSize`, the sum equal to
    /// `buffer.count`, the same on every rank). Afterwards this rank's block, at its own offset, holds the sum over
    /// all ranks; the other blocks are unspecified. The same bytes on the wire as half an all-reduce.
    func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws
    /// bfloat16 variant of `reduceScatterSum` (each pairwise sum in float32, rounded to bfloat16).
    func reduceScatterSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>, counts: [Int]) throws
    /// All-gather in place: every rank's block of `buffer` (blocks as in `reduceScatterSum`) is copied to every rank.
    func allGather(inPlace buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws
    /// Collects `counts[r]` floats from every rank r (`block.count == counts[rank]`) at `root`, back to back in rank
    /// order, into `receive` (at least the sum of `counts` floats at `root`; ignored, may be nil, elsewhere).
    func gather(
        _ block: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>?, counts: [Int], root: Int
    ) throws

    /// Returns once every rank has entered the barrier.
    func barrier() throws

    /// Shuts the communication layer down at the end of a run. Call once, on every rank;
    /// no collective may follow.
    func finalize() throws

    /// Stall inspector, step 1: announces that this rank has reached watched collective number `sequence` (the same
    /// numbering on every rank) and asks to hear of the others, without blocking. Not a collective itself; follow it
    /// with `testArrival()` until done, then the collective.
    func postArrival(sequence: Int) throws

    /// Stall inspector, step 2: polls the notices posted by `postArrival`, without blocking.
    func testArrival() throws -> ArrivalStatus

    /// Whether the collectives in flight may wait for the network lazily (fewer wake-ups, less CPU taken from the
    /// compute beside them, a little less bandwidth): on while they are hidden behind compute, off while a thread
    /// waits for them. Not a collective; safe from any thread. Default: ignored.
    func setRelaxedPolling(_ on: Bool)

    /// Writes `message`, tagged with this rank, to standard error and terminates the whole
    /// job (every rank) with exit status `code` (0 is turned into 1, so an abort never looks
    /// like success). Safe to call from any thread. Never returns.
    func abort(code: Int32, message: String) -> Never
}

/// What `testArrival()` has heard so far. Rank 0 hears from every rank (`arrived[r]`, its own entry true); every other
/// rank hears only from rank 0 (`arrived == [rank 0 heard]`), so that a hung rank 0 is named too.
public struct ArrivalStatus: Equatable, Sendable {
    /// True once this rank has heard what it waits for: rank 0 from every rank, others from rank 0.
    public var done: Bool
    public var arrived: [Bool]
    public init(done: Bool, arrived: [Bool]) {
        self.done = done
        self.arrived = arrived
    }
}

extension Communicator {
    /// Without point-to-point messages (one rank, or an in-process test world) every rank counts as arrived.
    public func postArrival(sequence: Int) throws {}
    public func setRelaxedPolling(_ on: Bool) {}
    public func testArrival() throws -> ArrivalStatus {
        ArrivalStatus(done: true, arrived: [Bool](repeating: true, count: rank == 0 ? worldSize : 1))
    }
}

extension Communicator {
    /// Default for communicators without a bfloat16 collective (test doubles): the float32 sum, rounded back.
    public func allReduceSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>) throws {
        var f = [Float](repeating: 0, count: buffer.count)
        f.withUnsafeMutableBufferPointer { BFloat16.decode(UnsafeBufferPointer(buffer), into: $0) }
        try f.withUnsafeMutableBufferPointer { try allReduceSum($0) }
        f.withUnsafeBufferPointer { BFloat16.encode($0, into: buffer) }
    }
}

extension Communicator {
    // Defaults for communicators without the v-collectives (test doubles), built from the fixed-size ones.

    public func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        try allReduceSum(buffer)
    }

    public func reduceScatterSumBF16(_ buffer: UnsafeMutableBufferPointer<UInt16>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        try allReduceSumBF16(buffer)
    }

    public func allGather(inPlace buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) throws {
        try checkBlocks(counts, total: buffer.count)
        let widest = counts.max() ?? 0
        let offsets = counts.indices.map { counts[..<$0].reduce(0, +) }
        var mine = [Float](repeating: 0, count: widest)
        for i in 0..<counts[rank] { mine[i] = buffer[offsets[rank] + i] }
        var all = [Float](repeating: 0, count: widest * worldSize)
        try mine.withUnsafeBytes { m in try all.withUnsafeMutableBytes { try allGather(m, into: $0) } }
        for r in 0..<worldSize { for i in 0..<counts[r] { buffer[offsets[r] + i] = all[r * widest + i] } }
    }

    public func gather(
        _ block: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>?, counts: [Int], root: Int
    ) throws {
        guard counts.count == worldSize, block.count == counts[rank] else {
            throw MPIError(
                code: MPIError.invalidArgument, rank: rank, operation: "gather(counts)",
                detail: "counts \(counts) for world size \(worldSize), block of \(block.count)")
        }
        let widest = counts.max() ?? 0
        var mine = [Float](repeating: 0, count: widest)
        for i in 0..<block.count { mine[i] = block[i] }
        var all = [Float](repeating: 0, count: rank == root ? widest * worldSize : 0)
        try mine.withUnsafeBytes { m in
            try all.withUnsafeMutableBytes { try gather(m, into: rank == root ? $0 : nil, root: root) }
        }
        guard rank == root, let receive else { return }
        var at = 0
        for r in 0..<worldSize { for i in 0..<counts[r] { receive[at] = all[r * widest + i]; at += 1 } }
    }

    /// Throws unless `counts` has one non-negative entry per rank summing to `total`.
    func checkBlocks(_ counts: [Int], total: Int) throws {
        guard counts.count == worldSize, counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == total else {
            throw MPIError(
                code: MPIError.invalidArgument, rank: rank, operation: "v-collective",
                detail: "block counts \(counts) do not split \(total) elements over \(worldSize) ranks")
        }
    }
}

/// bfloat16 (the top 16 bits of an IEEE float32), rounded to nearest even, as the MPI shim's sum op uses it.
public enum BFloat16 {
    public static func encode(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<UInt16>) {
        precondition(dst.count >= src.count, "bfloat16 buffer too small")
        cmpi_float_to_bf16(src.baseAddress, dst.baseAddress, Int64(src.count))
    }

    public static func decode(_ src: UnsafeBufferPointer<UInt16>, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(dst.count >= src.count, "float buffer too small")
        cmpi_bf16_to_float(src.baseAddress, dst.baseAddress, Int64(src.count))
    }
}
