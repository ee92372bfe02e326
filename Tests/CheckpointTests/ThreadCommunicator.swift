import Distributed
import Foundation

/// An in-process world: `size` threads act as ranks and every collective is an all-to-all exchange of
/// byte blocks through shared memory. Lets multi-rank save logic run in a unit test (12 ranks in
/// milliseconds); the real-MPI path is covered by `CheckpointMPITests`.
final class ThreadWorld: @unchecked Sendable {
    let size: Int
    private let cond = NSCondition()
    private var slots: [[UInt8]]
    private var arrived = 0, departed = 0
    private var draining = false

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
    }

    /// Every rank contributes `block`; all get every rank's block, in rank order.
    func exchange(rank: Int, _ block: [UInt8]) -> [[UInt8]] {
        cond.lock()
        defer { cond.unlock() }
        while draining { cond.wait() }  // the previous collective is still being read
        slots[rank] = block
        arrived += 1
        if arrived == size {
            draining = true
            cond.broadcast()
        } else {
            while !draining { cond.wait() }
        }
        let all = slots
        departed += 1
        if departed == size {
            arrived = 0
            departed = 0
            draining = false
            cond.broadcast()
        }
        return all
    }

    /// Runs `body` on `size` threads (one per rank) and returns each rank's result.
    func run<T>(_ body: @escaping (ThreadCommunicator) throws -> T) -> [Result<T, Error>] {
        let results = LockedSlots<Result<T, Error>>(size)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let t = Thread {
                results.set(r, Result { try body(ThreadCommunicator(world: self, rank: r)) })
                done.leave()
            }
            t.stackSize = 4 << 20
            t.start()
        }
        done.wait()
        return results.values.map { $0! }
    }
}

final class LockedSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [T?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ v: T) {
        lock.lock()
        values[i] = v
        lock.unlock()
    }
}

final class ThreadCommunicator: Communicator, @unchecked Sendable {
    let world: ThreadWorld
    let rank: Int
    var worldSize: Int { world.size }
    var processorName: String { "thread-host" }

    init(world: ThreadWorld, rank: Int) {
        self.world = world
        self.rank = rank
    }

    private func exchange(_ raw: UnsafeRawBufferPointer) -> [[UInt8]] { world.exchange(rank: rank, Array(raw)) }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        let all = exchange(UnsafeRawBufferPointer(buffer))
        for i in buffer.indices {
            buffer[i] = all.reduce(0) { $0 + $1.withUnsafeBytes { $0.load(fromByteOffset: 4 * i, as: Float.self) } }
        }
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        let all = exchange(UnsafeRawBufferPointer(buffer))
        for i in buffer.indices {
            buffer[i] = all.reduce(0) { $0 + $1.withUnsafeBytes { $0.load(fromByteOffset: 8 * i, as: Double.self) } }
        }
    }

    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        let all = exchange(UnsafeRawBufferPointer(buffer))
        precondition(all[root].count == buffer.count, "broadcast sizes differ")
        all[root].withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    func gather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer?, root: Int) throws {
        let all = exchange(block)
        precondition(all.allSatisfy { $0.count == block.count }, "gather block sizes differ")
        if rank == root, let receive { copy(all, receive) }
    }

    func allGather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        let all = exchange(block)
        precondition(all.allSatisfy { $0.count == block.count }, "allGather block sizes differ")
        copy(all, receive)
    }

    private func copy(_ all: [[UInt8]], _ receive: UnsafeMutableRawBufferPointer) {
        let flat = all.flatMap { $0 }
        flat.withUnsafeBytes { receive.copyMemory(from: $0) }
    }

    func barrier() throws { _ = exchange(UnsafeRawBufferPointer(start: nil, count: 0)) }
    func finalize() throws {}
    func abort(code: Int32, message: String) -> Never { fatalError("rank \(rank) aborted (\(code)): \(message)") }
}
