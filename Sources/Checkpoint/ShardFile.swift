import Foundation

/// The 32-byte header of a shard file (docs/checkpoint-format.md): magic, version, rank, world size, save id.
/// The frames follow it directly; the manifest says where each tensor's frames start.
struct ShardHeader: Equatable {
    static let magic = Array("F2WSHARD".utf8)
    static let version: UInt32 = 1
    var rank: Int, worldSize: Int, saveID: UInt64

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.raw(ShardHeader.magic)
        w.u32(ShardHeader.version)
        w.u32(UInt32(rank))
        w.u32(UInt32(worldSize))
        w.u32(0)
        w.u64(saveID)
        return w.bytes
    }

    /// nil if `bytes` is this header, else what differs.
    func mismatch(_ bytes: [UInt8]) -> String? {
        var r = ByteReader(bytes)
        guard r.take(8).map(Array.init) == ShardHeader.magic else { return "magic is not F2WSHARD" }
        guard let v = r.u32(), v == ShardHeader.version else { return "unknown shard format version" }
        guard let rk = r.u32(), let ws = r.u32(), r.u32() != nil, let id = r.u64() else { return "truncated header" }
        if Int(rk) != rank || Int(ws) != worldSize {
            return "written by rank \(rk) of \(ws), the manifest expects rank \(rank) of \(worldSize)"
        }
        return id == saveID ? nil : "save id \(Hex.string(id)) is not the manifest's \(Hex.string(saveID))"
    }
}

/// What writing one shard produced: everything rank 0 needs for the manifest.
struct ShardWriteResult {
    struct TensorResult {
        var xxh64: UInt64
        var frames: [(bytes: Int, xxh64: UInt64)]
    }
    var fileBytes = 0, rawBytes = 0
    var fileXXH64: UInt64 = 0
    var tensors: [TensorResult] = []
    var seconds = 0.0
}

enum ShardWriter {
    /// Writes `tensors` (in order) as the shard file `path`, atomically: chunk, shuffle, compress, checksum.
    /// - Throws: `CheckpointError.io` (disk full, permission, ...) or `.invalidArgument` for bad zstd settings.
    static func write(
        path: String, header: ShardHeader, tensors: [CheckpointTensor], options: SaveOptions
    ) throws -> ShardWriteResult {
        let start = Date()
        let zstd = try ZstdCompressor(level: options.level, workers: options.workers)
        let chunk = options.chunkBytes
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { scratch.deallocate() }
        var result = ShardWriteResult()
        var fileHash = XXH64()
        try FileSystem.writeAtomically(path) { w in
            let head = header.encoded()
            try w.write(head)
            head.withUnsafeBytes { fileHash.update($0) }
            let pipe = FramePipeline(writer: w, capacity: ZstdCompressor.bound(chunk))
            defer { pipe.close() }
            for t in tensors {
                var tr = ShardWriteResult.TensorResult(xxh64: 0, frames: [])
                try t.withBytes { raw in
                    tr.xxh64 = XXH64.hash(raw)
                    var off = 0
                    while off < raw.count {
                        let piece = UnsafeRawBufferPointer(rebasing: raw[off..<min(off + chunk, raw.count)])
                        var input = piece
                        if options.shuffle && t.dtype.size > 1 {
                            ByteShuffle.shuffle(piece, into: scratch, elementSize: t.dtype.size)
                            input = UnsafeRawBufferPointer(rebasing: scratch[0..<piece.count])
                        }
                        let (slot, frame) = pipe.acquire()
                        let n = try zstd.compress(input, into: frame)
                        let out = UnsafeRawBufferPointer(rebasing: frame[0..<n])
                        fileHash.update(out)
                        tr.frames.append((n, XXH64.hash(out)))
                        try pipe.submit(slot, count: n)
                        off += piece.count
                    }
                }
                result.rawBytes += t.byteCount
                result.tensors.append(tr)
            }
            try pipe.drain()
            result.fileBytes = w.written
        }
        result.fileXXH64 = fileHash.digest()
        result.seconds = Date().timeIntervalSince(start)
        return result
    }
}

/// Writes compressed frames on a background thread while the caller compresses the next ones: page-cache
/// writes took 0.1-0.4 s per 200 MB on the loaded test machine, as long as compression itself, so they
/// should overlap it rather than add to it. At most `slots` frames are in flight; the first write error
/// is kept and rethrown by the next `submit` or by `drain`.
final class FramePipeline {
    private let writer: FileWriter
    private let queue = DispatchQueue(label: "checkpoint.frame-writer")
    private let cond = NSCondition()  // guards `free` and `failure`
    private var buffers: [UnsafeMutableRawBufferPointer]
    private var free: [Int]
    private var failure: Error?

    init(writer: FileWriter, capacity: Int, slots: Int = 3) {
        self.writer = writer
        buffers = (0..<slots).map { _ in .allocate(byteCount: capacity, alignment: 64) }
        free = Array(0..<slots)
    }

    /// A free buffer (waits until the writer returns one). It is reused only after `submit` (an error exit
    /// may drop it: `close` frees every buffer anyway).
    func acquire() -> (Int, UnsafeMutableRawBufferPointer) {
        cond.lock()
        defer { cond.unlock() }
        while free.isEmpty { cond.wait() }
        let i = free.removeLast()
        return (i, buffers[i])
    }

    /// Queues the first `count` bytes of buffer `slot` for writing, in submission order.
    func submit(_ slot: Int, count: Int) throws {
        let frame = Frame(bytes: UnsafeRawBufferPointer(rebasing: buffers[slot][0..<count]))
        queue.async { [self] in
            cond.lock()
            let failed = failure != nil
            cond.unlock()
            var error: Error?
            if !failed { do { try writer.write(frame.bytes) } catch let e { error = e } }
            cond.lock()
            if failure == nil { failure = error }
            free.append(slot)
            cond.signal()
            cond.unlock()
        }
        try check()
    }

    /// A slot's bytes handed to the writer thread; the slot is not reused until the write returns it.
    private struct Frame: @unchecked Sendable { let bytes: UnsafeRawBufferPointer }

    private func check() throws {
        cond.lock()
        defer { cond.unlock() }
        if let f = failure { throw f }
    }

    /// Waits for every queued write; rethrows the first failure.
    func drain() throws {
        queue.sync {}
        try check()
    }

    /// Waits for queued writes and frees the buffers (also on error paths).
    func close() {
        queue.sync {}
        for b in buffers { b.deallocate() }
        buffers = []
    }
}
