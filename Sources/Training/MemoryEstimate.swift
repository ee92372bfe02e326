import Engine
import Foundation
import UGATIT

/// Memory a rank will need for a training configuration, estimated before anything large is allocated.
///
/// - parameters, gradients and Adam's two moments: 4 arenas of 4 bytes per parameter, from the closed-form
///   parameter counts (spec A.5), and one generator's gradients more (held apart by a chain of the step); with
///   `--shard-optimizer` at world size N the moments take 8/N bytes per parameter, except the full generators'
///   FC.0 under the low-rank exchange, whose moments stay whole;
/// - activations: the tensor bytes of one D and one G step, measured once on a small calibration model
///   (`calibrationSize`, ch 4, batch 1, the same blocks, generator kind and discriminator depths) and scaled by
///   batch · ch · S² — every feature map, im2col buffer and gradient of this architecture is a channel multiple
///   of the image area, so the small terms left out shrink as the model grows;
/// - data: the prefetched batches (3 per domain) and the sample-grid images;
/// - runtime: the process's resident memory before the model exists (program, libraries, OpenBLAS buffers);
/// - allocator overhead: 15% of the tensor bytes (malloc's headers and free lists, OpenBLAS's growing buffers,
///   thread stacks). Measured on an AMD EPYC (docs/training.md): resident memory exceeded the tensor peak plus the
///   runtime by 12-25% at 64/16, 96/32 and 128/32 light and 128/32 full.
/// KID evaluation (`--kid-every`) is not included.
public struct MemoryEstimate: Sendable {
    public var parameterBytes: Int
    public var gradientBytes: Int
    public var optimizerBytes: Int
    public var activationBytes: Int
    public var dataBytes: Int
    public var runtimeBytes: Int
    /// Tensor storage: parameters, gradients, Adam state, activations and data.
    public var tensorBytes: Int { parameterBytes + gradientBytes + optimizerBytes + activationBytes + dataBytes }
    public var overheadBytes: Int { Int(0.15 * Double(tensorBytes)) }
    public var total: Int { tensorBytes + overheadBytes + runtimeBytes }

    /// Activation bytes per (batch · ch · S²) from a calibration step, cached per architecture.
    nonisolated(unsafe) private static var perUnitCache: [String: Double] = [:]

    /// - Parameters: `worldSize`: ranks of the run (it divides the sharded optimizer state); `runtimeBytes`: the
    ///   resident memory now (default: this process's VmRSS).
    public init(config: TrainConfig, worldSize: Int = 1, runtimeBytes: Int? = nil) {
        let m = config.model
        let g = m.generator.parameterCount
        let d = [true, false].flatMap { global in
            [false, true].map { m.discriminator(global: global, domainB: $0).parameterCount }
        }.reduce(0, +)
        let p = 2 * g + d
        parameterBytes = 4 * p
        // and one generator's gradients held apart by one of the step's two chains (UGATITStep, SeparateGradients)
        gradientBytes = 4 * p + 4 * g
        optimizerBytes = 8 * p
        if config.shardOptimizer == true && worldSize > 1 {
            let whole =
                (config.fcExchange ?? .auto).usesLowRank(model: m, worldSize: worldSize, batchPerRank: config.batchSize)
                ? 2 * m.generator.fullFCInput * 4 * m.ch : 0
            optimizerBytes = 8 * whole + 8 * (p - whole) / worldSize
        }
        let unit = Double(config.batchSize * m.ch * m.imageSize * m.imageSize)
        activationBytes = Int(unit * MemoryEstimate.activationBytesPerUnit(m))
        // 3 prefetched batches per domain plus the one in use, and up to 8 sample images per domain
        dataBytes = 4 * 3 * m.imageSize * m.imageSize * (2 * 4 * config.batchSize + 16)
        self.runtimeBytes = runtimeBytes ?? HostMemory.residentBytes() ?? 0
    }

    /// The smallest image size (from 32, in steps of 16) that both discriminators can judge.
    public static func calibrationSize(_ m: ModelConfig) -> Int {
        var s = 32
        while s < 4096 {
            var c = m
            c.imageSize = s
            if c.problems().isEmpty { return s }
            s += 16
        }
        return s
    }

    static func activationBytesPerUnit(_ m: ModelConfig, size: Int? = nil, ch: Int = 4) -> Double {
        var c = m
        c.imageSize = size ?? calibrationSize(m)
        c.ch = ch
        let key = "\(c)"
        if let v = perUnitCache[key] { return v }
        let model = UGATITModel(config: c, seed: 0)
        let step = UGATITStep(model: model)
        let s = c.imageSize
        let a = Tensor(zeros: [1, 3, s, s])
        let b = Tensor(zeros: [1, 3, s, s])
        TensorMemory.resetPeak()
        let before = TensorMemory.liveBytes
        step.discriminatorGradients(realA: a, realB: b)
        step.applyDiscriminator()
        step.generatorGradients(realA: a, realB: b)
        step.applyGenerator()
        // Adam's moments are allocated on the first update: they are counted in optimizerBytes, not here
        let moments = 8 * (model.generators.parameterCount + model.discriminators.parameterCount)
        let v = Double(max(0, TensorMemory.peakBytes - before - moments)) / Double(c.ch * s * s)
        perUnitCache[key] = v
        return v
    }

    /// One line per part, in MB, for the start-up banner.
    public var summary: String {
        func mb(_ b: Int) -> String { String(format: "%.0f", Double(b) / 1_048_576) }
        return
            "parameters \(mb(parameterBytes)) MB, gradients \(mb(gradientBytes)) MB, Adam state \(mb(optimizerBytes)) MB, "
            + "activations \(mb(activationBytes)) MB, data \(mb(dataBytes)) MB, allocator \(mb(overheadBytes)) MB, runtime \(mb(runtimeBytes)) MB: "
            + "\(mb(total)) MB per rank"
    }
}

/// What this host allows: available memory, the cgroup limit, and the ranks of this job that share it.
public enum HostMemory {
    /// This process's resident set (VmRSS), bytes.
    public static func residentBytes() -> Int? { kilobytes("VmRSS", in: "/proc/self/status") }
    /// This process's peak resident set (VmHWM), bytes.
    public static func peakResidentBytes() -> Int? { kilobytes("VmHWM", in: "/proc/self/status") }
    /// MemAvailable of /proc/meminfo, bytes.
    public static func availableBytes() -> Int? { kilobytes("MemAvailable", in: "/proc/meminfo") }

    /// The value of a `Name:   1234 kB` line of a /proc file, in bytes.
    private static func kilobytes(_ name: String, in file: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    /// The memory limit of this process's cgroup (v2 `memory.max`, or v1 `memory.limit_in_bytes`) less what the
    /// cgroup already uses; nil when unlimited or unknown.
    public static func cgroupHeadroomBytes() -> Int? {
        var dirs: [String] = []
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                if f.count == 3 && f[0] == "0" { dirs.append("/sys/fs/cgroup" + f[2]) }
                if f.count == 3 && f[1].split(separator: ",").contains("memory") {
                    dirs.append("/sys/fs/cgroup/memory" + f[2])
                }
            }
        }
        dirs += ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"]
        func number(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        for d in dirs {
            if let limit = number(d + "/memory.max"), let used = number(d + "/memory.current") {
                return max(0, limit - used)
            }
            if let limit = number(d + "/memory.limit_in_bytes"), limit < 1 << 60,
                let used = number(d + "/memory.usage_in_bytes")
            {
                return max(0, limit - used)
            }
        }
        return nil
    }

    /// Ranks of this job on this host, from the launcher's environment (Open MPI, MPICH/Hydra, Slurm); 1 without.
    public static func localRanks(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[key].flatMap({ Int($0.split(separator: "(").first ?? "") }), v > 0 { return v }
        }
        return 1
    }

    /// What the ranks of this host may use together: MemAvailable and the cgroup headroom, the smaller, plus what
    /// the ranks hold already (`residentPerRank` each, counted as used in both). `F2W_MEMORY_AVAILABLE_MB`
    /// overrides the measurement (for tests and for schedulers that know better).
    public static func allowance(
        localRanks: Int, residentPerRank: Int,
        env: [String: String] = ProcessInfo.processInfo.environment
    ) -> (bytes: Int, source: String)? {
        if let mb = env["F2W_MEMORY_AVAILABLE_MB"].flatMap(Double.init), mb.isFinite, mb >= 0 {
            return (Int(mb * 1_048_576), "F2W_MEMORY_AVAILABLE_MB")
        }
        var best: (Int, String)?
        if let a = availableBytes() { best = (a, "MemAvailable") }
        if let c = cgroupHeadroomBytes(), c < best?.0 ?? .max { best = (c, "the cgroup memory limit") }
        return best.map { ($0.0 + localRanks * residentPerRank, $0.1) }
    }
}
