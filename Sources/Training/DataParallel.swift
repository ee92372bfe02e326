import Distributed
import Engine
import Foundation
import UGATIT

/// Data-parallel synchronisation for the training loop: every rank runs the same step on its share of the global
/// batch; gradients are averaged with all-reduce (sum, then ·1/N) in fixed-size buckets, in the same order on every
/// rank (Horovod/DDP style, ../shared/reference/distributed-design.md). The phase's loss values and a non-finite flag
/// ride in the last bucket, so a phase costs ⌈gradient bytes / bucket⌉ collectives and nothing more.
public final class DataParallel {
    public let comm: Communicator
    /// Elements per all-reduce bucket.
    public let bucketElements: Int
    public let watchdog: Watchdog
    private var staging: [Float] = []
    /// Seconds spent in gradient averaging (all-reduce, scaling, finiteness check), for benchmarks.
    public private(set) var averageSeconds: Double = 0

    /// - Parameters: `bucketBytes` default 25 MB (DDP's default); `collectiveTimeout` in seconds.
    public init(comm: Communicator, bucketBytes: Int = 25 << 20, collectiveTimeout: Double = 600) {
        self.comm = comm
        bucketElements = max(1024, bucketBytes / MemoryLayout<Float>.stride)
        watchdog = Watchdog(comm: comm, timeout: collectiveTimeout)
    }

    /// All-reduce collectives for `elements` gradient values (the loss values ride in the last one).
    public func bucketCount(elements: Int) -> Int { max(1, (elements + bucketElements - 1) / bucketElements) }

    public var rank: Int { comm.rank }
    public var worldSize: Int { comm.worldSize }

    /// Checks that every rank runs the same configuration, parameter layout, world size and program version.
    /// - Throws: `TrainingError.rankMismatch` naming the ranks whose fingerprint differs from rank 0's.
    public func checkAgreement(config: TrainConfig, model: UGATITModel) throws {
        var text = "\(Version.string)|world=\(worldSize)|\(config.json())"
        for s in [model.generators, model.discriminators] {
            for p in s.parameters { text += "|\(p.name)\(p.shape)" }
            for b in s.buffers { text += "|\(b.name)\(b.value.shape)" }
        }
        var h = fnv1a(text)
        var all = [UInt64](repeating: 0, count: worldSize)
        try watchdog.guarded("allGather(config hash)", bytes: 8 * worldSize) {
            try withUnsafeBytes(of: &h) { mine in
                try all.withUnsafeMutableBytes { try comm.allGather(mine, into: $0) }
            }
        }
        let differing = all.indices.filter { all[$0] != all[0] }
        if !differing.isEmpty {
            throw TrainingError.rankMismatch("ranks \(differing.map(String.init).joined(separator: ", ")) differ from rank 0 "
                + "in configuration, parameter layout, world size or program version (this rank: \(Version.string), \(config.json()))")
        }
    }

    /// Copies rank 0's parameters and buffers (spectral-norm u, v included) to every rank.
    public func broadcastState(_ model: UGATITModel) throws {
        for s in [model.generators, model.discriminators] {
            for t in [s.values, s.bufferValues] where t.count > 0 {
                try watchdog.guarded("broadcast(parameters)", bytes: 4 * t.count) {
                    try comm.broadcast(UnsafeMutableRawBufferPointer(start: t.data, count: 4 * t.count), root: 0)
                }
            }
        }
    }

    /// Averages `store`'s gradients over the ranks and `values` (loss values) with them.
    /// - Returns: false if any rank had a non-finite gradient (then every rank must skip this update).
    public func average(_ store: ParameterStore, values: inout [Float], operation: String) -> Bool {
        let t0 = ProcessInfo.processInfo.systemUptime
        defer { averageSeconds += ProcessInfo.processInfo.systemUptime - t0 }
        let g = store.grads
        let n = g.count
        var finite: Float = 1
        for i in 0..<n where !g[i].isFinite { finite = 0; break }
        let extras = values + [1 - finite]
        let scale = 1 / Float(worldSize)
        var off = 0
        repeat {
            let len = min(bucketElements, n - off)
            let last = off + len >= n
            if last {
                staging.removeAll(keepingCapacity: true)
                staging.append(contentsOf: UnsafeBufferPointer(start: g.data + off, count: len))
                staging.append(contentsOf: extras)
                collective(operation, &staging)
                (g.data + off).update(from: staging, count: len)
                for j in 0..<values.count { values[j] = staging[len + j] * scale }
                finite = staging[len + values.count] == 0 ? 1 : 0
            } else {
                let buf = UnsafeMutableBufferPointer(start: g.data + off, count: len)
                comm.abortOnFailure("all-reduce of \(operation) gradients", code: ExitStatus.peerFailure.rawValue) {
                    try watchdog.guarded("allReduce(\(operation))", bytes: 4 * len) { try comm.allReduceSum(buf) }
                }
            }
            off += len
        } while off < n
        if worldSize > 1 { for i in 0..<n { g[i] *= scale } }
        return finite == 1
    }

    private func collective(_ operation: String, _ buf: inout [Float]) {
        let bytes = 4 * buf.count
        buf.withUnsafeMutableBufferPointer { p in
            comm.abortOnFailure("all-reduce of \(operation) gradients", code: ExitStatus.peerFailure.rawValue) {
                try watchdog.guarded("allReduce(\(operation))", bytes: bytes) { try comm.allReduceSum(p) }
            }
        }
    }
}

/// Aborts the whole job when a collective does not complete within `timeout` seconds (a hung peer is otherwise
/// only caught by mpirun's whole-job --timeout; platform-notes §5). One thread per rank checks once a second.
public final class Watchdog: @unchecked Sendable {
    let comm: Communicator
    public let timeout: Double
    private let lock = NSLock()
    private var current: (operation: String, bytes: Int, started: Double)?
    /// Training step, for the abort message.
    public var step: Int {
        get { lock.lock(); defer { lock.unlock() }; return _step }
        set { lock.lock(); _step = newValue; lock.unlock() }
    }
    private var _step = 0
    private var thread: Thread?

    init(comm: Communicator, timeout: Double) {
        self.comm = comm
        self.timeout = timeout
        guard comm.worldSize > 1, timeout > 0 else { return }
        let t = Thread { [weak self] in
            while let me = self {
                me.check()
                Thread.sleep(forTimeInterval: min(1, max(0.05, timeout / 10)))
            }
        }
        t.name = "collective-watchdog"
        t.start()
        thread = t
    }

    private func check() {
        lock.lock()
        let c = current, s = _step
        lock.unlock()
        guard let c, ProcessInfo.processInfo.systemUptime - c.started > timeout else { return }
        comm.abort(code: ExitStatus.peerFailure.rawValue, message: "collective timeout: \(c.operation) of \(c.bytes) bytes at step \(s) has not completed after "
                   + "\(Int(timeout)) s (--collective-timeout); a peer rank is hung or unreachable. Aborting the job.")
    }

    /// Runs `body` (one collective) under the watchdog.
    public func guarded<T>(_ operation: String, bytes: Int, _ body: () throws -> T) rethrows -> T {
        lock.lock(); current = (operation, bytes, ProcessInfo.processInfo.systemUptime); lock.unlock()
        defer { lock.lock(); current = nil; lock.unlock() }
        return try body()
    }
}

/// The program version, part of the rank-agreement fingerprint and of every checkpoint.
public enum Version { public static let string = "0.1.0" }

func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}
