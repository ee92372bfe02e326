import Engine
import Foundation
import UGATIT

/// A single-file training checkpoint (safetensors): every parameter and buffer under its official
/// UGATIT-pytorch key (`genA2B.DownBlock.1.weight`, `disGA.model.1.weight_u`, ...), both Adam states
/// (`optim.G.exp_avg.<key>`, `optim.G.exp_avg_sq.<key>`, likewise `optim.D`), and in the metadata the
/// configuration, step, images seen and per-parameter Adam step counts.
///
/// Written to a temporary file, fsynced and renamed, so a checkpoint is never half-written.
/// (The sharded multi-rank format replaces this file format behind the same `save`/`load` calls.)
public enum Checkpoint {
    public static let format = "face2webtoon-checkpoint"
    public static let version = "1"

    public struct State {
        public var step: Int
        public var imagesSeen: Int
        public var extra: [String: String] = [:]
        public init(step: Int, imagesSeen: Int) { self.step = step; self.imagesSeen = imagesSeen }
    }

    /// Writes `model`, optimizer state and `state` to `path` atomically.
    /// - Throws: `TrainingError.io` naming the path if writing, syncing or renaming fails.
    public static func save(path: String, config: TrainConfig, model: UGATITModel, step: UGATITStep?, state: State) throws {
        var tensors: [(String, Tensor)] = []
        for s in [model.generators, model.discriminators] {
            tensors += s.parameters.map { ($0.name, $0.value) }
            tensors += s.buffers.map { ($0.name, $0.value) }
        }
        var meta = ["format": format, "version": version, "config": config.json(),
                    "step": "\(state.step)", "images_seen": "\(state.imagesSeen)"]
        if let step {
            for (tag, opt) in [("G", step.gOptimizer), ("D", step.dOptimizer)] {
                for (i, p) in opt.parameters.enumerated() {
                    tensors.append(("optim.\(tag).exp_avg.\(p.name)", opt.m[i]))
                    tensors.append(("optim.\(tag).exp_avg_sq.\(p.name)", opt.v[i]))
                }
                meta["optim.\(tag).steps"] = opt.steps.map(String.init).joined(separator: ",")
            }
        }
        for (k, v) in state.extra { meta["extra.\(k)"] = v }
        let data = try SafeTensorsFile.encode(tensors, metadata: meta)
        try AtomicFile.write(data, to: path)
    }

    /// The configuration and state stored in the checkpoint at `path`.
    public static func peek(path: String) throws -> (TrainConfig, State) {
        let f = try open(path)
        return try (config(f), state(f))
    }

    /// Loads parameters, buffers and (if `step` is given) Adam state into a model built from the same config.
    /// - Throws: `TrainingError.checkpoint` naming the file and the first missing or mis-shaped tensor.
    public static func load(path: String, into model: UGATITModel, step: UGATITStep?) throws -> State {
        let f = try open(path)
        for s in [model.generators, model.discriminators] {
            for p in s.parameters { try copy(f, p.name, into: p.value) }
            for b in s.buffers { try copy(f, b.name, into: b.value) }
        }
        if let step {
            for (tag, opt) in [("G", step.gOptimizer), ("D", step.dOptimizer)] {
                for (i, p) in opt.parameters.enumerated() {
                    try copy(f, "optim.\(tag).exp_avg.\(p.name)", into: opt.m[i])
                    try copy(f, "optim.\(tag).exp_avg_sq.\(p.name)", into: opt.v[i])
                }
                let counts = (f.metadata["optim.\(tag).steps"] ?? "").split(separator: ",").compactMap { Int($0) }
                guard counts.count == opt.steps.count else {
                    throw TrainingError.checkpoint(path: path, reason: "optimizer \(tag) has \(counts.count) step counts, expected \(opt.steps.count)")
                }
                opt.steps = counts
            }
        }
        return try state(f)
    }

    static func open(_ path: String) throws -> SafeTensorsFile {
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        guard f.metadata["format"] == format else {
            throw TrainingError.checkpoint(path: path, reason: "not a face2webtoon checkpoint (format \(f.metadata["format"] ?? "missing"))")
        }
        guard f.metadata["version"] == version else {
            throw TrainingError.checkpoint(path: path, reason: "unknown checkpoint version \(f.metadata["version"] ?? "missing"), this program reads \(version)")
        }
        return f
    }

    static func config(_ f: SafeTensorsFile) throws -> TrainConfig {
        guard let json = f.metadata["config"]?.data(using: .utf8),
              let c = try? JSONDecoder().decode(TrainConfig.self, from: json) else {
            throw TrainingError.checkpoint(path: f.path, reason: "configuration missing or unreadable")
        }
        return c
    }

    static func state(_ f: SafeTensorsFile) throws -> State {
        guard let s = f.metadata["step"].flatMap(Int.init), let n = f.metadata["images_seen"].flatMap(Int.init) else {
            throw TrainingError.checkpoint(path: f.path, reason: "step or images_seen missing")
        }
        var st = State(step: s, imagesSeen: n)
        for (k, v) in f.metadata where k.hasPrefix("extra.") { st.extra[String(k.dropFirst(6))] = v }
        return st
    }

    static func copy(_ f: SafeTensorsFile, _ name: String, into t: Tensor) throws {
        guard let e = f.entry(name) else { throw TrainingError.checkpoint(path: f.path, reason: "tensor \(name) missing") }
        guard e.shape == t.shape else {
            throw TrainingError.checkpoint(path: f.path, reason: "tensor \(name) has shape \(e.shape), the model needs \(t.shape)")
        }
        t.assign(try f.tensor(name))
    }
}

/// Crash-safe file replacement: write `<path>.tmp-<pid>`, fsync it, rename over `path`, fsync the directory.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = Foundation.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TrainingError.io(path: tmp, reason: String(cString: strerror(errno))) }
        var ok = true
        var err = ""
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; err = String(cString: strerror(errno)); return }
                off += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false; err = String(cString: strerror(errno)) }
        close(fd)
        guard ok else { unlink(tmp); throw TrainingError.io(path: path, reason: "write failed: \(err)") }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw TrainingError.io(path: path, reason: "rename failed: \(e)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = Foundation.open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
