// Fuzz harness for the checkpoint readers (Scripts/fuzz-checkpoint builds it with -sanitize=fuzzer,address).
// An input's first byte picks the reader, the rest is the untrusted file:
//   0: manifest parser   1/2: merged-file reader with/without checksum checks
//   3/4: shard reader with/without checksum checks; input = u32 LE manifest length, manifest, shard bytes.
// Built without -DFUZZING it is a plain program: `CheckpointFuzz FILE...` replays inputs (e.g. a crash
// libFuzzer saved), `CheckpointFuzz --make-corpus DIR` writes the seed corpus.
@_spi(Fuzzing) import Checkpoint
import Distributed
import Engine
import Foundation

func fuzzOne(_ data: [UInt8]) {
    guard let selector = data.first else { return }
    let body = Array(data.dropFirst())
    switch selector % 5 {
    case 0: _ = try? CheckpointFuzzing.manifest(body)
    case 1, 2: _ = try? CheckpointFuzzing.merged(body, checksums: selector % 5 == 1)
    default:
        guard body.count >= 4 else { return }
        let n = Int(body[0]) | Int(body[1]) << 8 | Int(body[2]) << 16 | Int(body[3]) << 24
        guard n <= body.count - 4 else { return }
        _ = try? CheckpointFuzzing.shard(
            manifest: Array(body[4..<4 + n]), shard: Array(body[(4 + n)...]), checksums: selector % 5 == 3)
    }
}

/// Seeds: a real two-shard checkpoint (F32 with shuffle, I64, U64, F64, an empty tensor, several frames)
/// and its merged file, prefixed for each reader.
func makeCorpus(_ dir: String) throws {
    let work = NSTemporaryDirectory() + "ckpt-fuzz-seed-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: work) }
    var rng = RandomGenerator(seed: 7)
    let tensors = [
        CheckpointTensor("w", rng.normalTensor([3000], std: 0.02)),
        CheckpointTensor("b", rng.normalTensor([7], std: 0.02)),
        CheckpointTensor("steps", int64: [1, 2, -3]), CheckpointTensor("rng", uint64: [UInt64.max, 42]),
        CheckpointTensor("p", float64: [0.25]), CheckpointTensor("empty", Tensor(zeros: [0, 4])),
    ]
    let fields = ManifestFields(
        programVersion: "fuzz", config: "{\"a\":1}", imagesSeen: 9, state: .object(["x": .uint(UInt64.max)]))
    let options = SaveOptions(chunkBytes: 4096)
    try Checkpoints.save(
        root: work, step: 3, tensors: tensors, manifestFields: fields, comm: SingleRankCommunicator(), options: options)
    let step = Checkpoints.stepDirectory(root: work, step: 3)
    let manifest = Array(try Data(contentsOf: URL(fileURLWithPath: step + "/manifest.json")))
    let shardName = try FileManager.default.contentsOfDirectory(atPath: step).first { $0.hasSuffix(".shard") }!
    let shard = Array(try Data(contentsOf: URL(fileURLWithPath: step + "/" + shardName)))
    try Checkpoints.merge(from: work, to: work + "/merged.ckpt")
    let merged = Array(try Data(contentsOf: URL(fileURLWithPath: work + "/merged.ckpt")))
    let n = UInt32(manifest.count)
    let lengthPrefix = [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
    let seeds: [(String, [UInt8])] = [
        ("manifest", [0] + manifest), ("merged", [1] + merged), ("merged-nocheck", [2] + merged),
        ("shard", [3] + lengthPrefix + manifest + shard), ("shard-nocheck", [4] + lengthPrefix + manifest + shard),
    ]
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, bytes) in seeds { try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
    print("wrote \(seeds.count) seeds to \(dir)")
}

#if FUZZING
    /// The libFuzzer entry point (its own `main` in libclang_rt.fuzzer needs it to link).
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        fuzzOne(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    // SwiftPM links executables with `--defsym main=CheckpointFuzz_main`, which replaces libFuzzer's `main`
    // with this file's top-level code; so the top-level code starts libFuzzer through its driver entry point.
    @_extern(c, "LLVMFuzzerRunDriver")
    func fuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    if let dir = ProcessInfo.processInfo.environment["F2W_FUZZ_MAKE_CORPUS"] {
        try makeCorpus(dir)  // one build serves both: seed corpus, then fuzzing
        exit(0)
    }
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(fuzzerRunDriver(&argc, &argv) { fuzzInput($0, $1) })
#else
    let args = Array(CommandLine.arguments.dropFirst())
    if args.count == 2 && args[0] == "--make-corpus" {
        try makeCorpus(args[1])
    } else if args.isEmpty || args[0].hasPrefix("-") {
        print("usage: CheckpointFuzz FILE... | --make-corpus DIR   (the fuzzer itself: Scripts/fuzz-checkpoint)")
    } else {
        for path in args {
            fuzzOne(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("\(path): ok")
        }
    }
#endif
