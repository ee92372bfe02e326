@testable import Checkpoint
import Distributed
import Foundation
import XCTest

final class ZZBenchTmp: XCTestCase {
    func testBench() throws {
        guard let spec = ProcessInfo.processInfo.environment["CKPT_BENCH"] else { throw XCTSkip("bench") }
        // spec: "level,workers,shuffle,chunkMiB;..."
        let dir = ProcessInfo.processInfo.environment["CKPT_BENCH_DIR"] ?? NSTemporaryDirectory()
        let mb = Int(ProcessInfo.processInfo.environment["CKPT_BENCH_MB"] ?? "256")!
        for item in spec.split(separator: ";") {
            let p = item.split(separator: ",").map { Int($0)! }
            let o = SaveOptions(level: p[0], workers: p[1], shuffle: p[2] == 1, chunkBytes: p[3] << 20)
            let r = try Checkpoints.benchmark(directory: dir, megabytes: mb, options: o, comm: SingleRankCommunicator())
            print(String(format: "BENCH level=%d workers=%d shuffle=%d chunk=%dMiB save=%.0f MB/s (local %.3fs, total %.3fs) load=%.0f MB/s ratio=%.4f",
                         p[0], p[1], p[2], p[3], r.saveMBps, r.localWriteSeconds, r.saveSeconds, r.loadMBps, r.compressionRatio))
        }
    }
}
import Engine
final class ZZBenchParts: XCTestCase {
    func testParts() throws {
        guard ProcessInfo.processInfo.environment["CKPT_PARTS"] != nil else { throw XCTSkip("bench") }
        var rng = RandomGenerator(seed: 1)
        let t = rng.normalTensor([64_000_000], std: 0.02)
        let raw = UnsafeRawBufferPointer(start: t.data, count: t.count * 4)
        let chunk = 4 << 20
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: ZstdCompressor.bound(chunk), alignment: 64)
        func time(_ label: String, _ body: () throws -> Void) rethrows {
            let s = Date(); try body(); let d = Date().timeIntervalSince(s)
            print(String(format: "PART %@ %.3fs %.0f MB/s", label, d, 256 / d))
        }
        time("xxh64") { _ = XXH64.hash(raw) }
        time("shuffle") { var o = 0; while o < raw.count { let n = min(chunk, raw.count - o); ByteShuffle.shuffle(UnsafeRawBufferPointer(rebasing: raw[o..<o+n]), into: scratch, elementSize: 4); o += n } }
        time("unshuffle") { var o = 0; while o < raw.count { let n = min(chunk, raw.count - o); ByteShuffle.unshuffle(UnsafeRawBufferPointer(rebasing: raw[o..<o+n]), into: scratch, elementSize: 4); o += n } }
        for (lvl, w) in [(1, 0), (1, 2), (3, 0)] {
            let z = try ZstdCompressor(level: lvl, workers: w)
            try time("zstd l\(lvl) w\(w) shuffled") { var o = 0; while o < raw.count { let n = min(chunk, raw.count - o); ByteShuffle.shuffle(UnsafeRawBufferPointer(rebasing: raw[o..<o+n]), into: scratch, elementSize: 4); _ = try z.compress(UnsafeRawBufferPointer(rebasing: scratch[0..<n]), into: frame); o += n } }
        }
        let path = NSTemporaryDirectory() + "parts-\(getpid())"
        try time("write") { let w = try FileWriter(creating: path); var o = 0; while o < raw.count { let n = min(chunk, raw.count - o); try w.write(UnsafeRawBufferPointer(rebasing: raw[o..<o+n])); o += n }
            let s = Date(); try w.finish(); print(String(format: "PART fsync %.3fs", Date().timeIntervalSince(s))) }
        unlink(path)
    }
}
