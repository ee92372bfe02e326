import ArgumentParser
import Foundation
import Training

/// `face2webtoon bench scaling`: `bench train` on 1 rank, then on N ranks under mpirun (1 thread each), in one run;
/// with `--rounds R`, R such pairs in alternating order (1, N, N, 1, 1, N, …), so that a drift in the shared machine's
/// speed falls on both sides alike. With `--concurrent-baseline`, each round also runs N independent 1-rank processes
/// at once, between the two: where the N "hosts" are one machine's cores (Scripts/netns-cluster), their step is
/// what N ranks would take if communication were free, and `distribution_efficiency` (it over the N-rank step) is
/// what distribution itself costs, without the hosts' sharing of cores, caches and memory bandwidth.
struct BenchScaling: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Data-parallel scaling: images/s at 1 and N ranks (1 thread each); prints key=value lines.")

    /// The same model options and defaults as `train` and `bench train`.
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Ranks for the parallel run.") var ranks = 2
    @Option(help: "Timed steps per run.") var steps = 5
    @Option(
        help:
            "Pairs of runs (1 rank, N ranks) in alternating order (an even number balances it); scaling_efficiency is then the pairs' total 1-rank time over their total N-rank time."
    )
    var rounds = 1
    @Flag(
        help:
            "Each round also runs N 1-rank processes at once, without communication (emulated hosts on one machine: their shared cores' step); prints seconds_per_iter_concurrent and distribution_efficiency."
    )
    var concurrentBaseline = false
    @Option(help: "Extra arguments for mpirun (e.g. \"--hostfile hosts --mca btl tcp,self\").") var mpirunArgs = ""
    @OptionGroup var exchange: ExchangeOptions

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds \(rounds): expected at least 1") }
    }

    func run() throws {
        let me = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let m = try modelOptions.config(defaultSize: ModelOptions.defaultImageSize)
        let common = [
            "bench", "train", "--img-size", "\(m.imageSize)", "--ch", "\(m.ch)", "--n-res", "\(m.blocks)",
            m.light ? "--light" : "--full", "--global-layers", "\(m.globalLayers)", "--local-layers",
            "\(m.localLayers)",
            m.camUsesRawWeight ? "--d-cam-raw-weight" : "--no-d-cam-raw-weight",
            "--threads", "1", "--steps", "\(steps)", "--no-peak",
        ] + exchange.arguments
        print(
            "img_size=\(m.imageSize) ch=\(m.ch) n_res=\(m.blocks) generator=\(m.light ? "light" : "full") "
                + "global_layers=\(m.globalLayers) local_layers=\(m.localLayers)")
        guard
            let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw TrainingError.io(path: "/usr/bin/mpirun", reason: "mpirun not found: run Scripts/setup") }
        let extra = mpirunArgs.split(separator: " ").map(String.init)
        let parallelRun = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)"] + extra + [me] + common
        // a run's step time from its images_per_s (printed to 3 decimals like every figure; a step of a few ms would
        // lose its precision as s/step)
        func seconds(_ r: [String: Double], ranks: Int) -> Double {
            Double(ranks) * (r["batch_size"] ?? 1) / (r["images_per_s"] ?? .nan)
        }
        var ones: [[String: Double]] = []
        var manys: [[String: Double]] = []
        var concurrents: [Double] = []  // the N processes' mean step, per round
        func one() throws { ones.append(try Self.launch([me] + common)) }
        func many() throws { manys.append(try Self.launch(parallelRun)) }
        for r in 0..<rounds {
            // 1, (N at once), N in even rounds, the reverse in odd ones: the concurrent run stays between the two
            let (first, last) = r % 2 == 0 ? (one, many) : (many, one)
            try first()
            if concurrentBaseline {
                let runs = try Self.launchTogether(Array(repeating: [me] + common, count: ranks))
                concurrents.append(runs.map { seconds($0, ranks: 1) }.reduce(0, +) / Double(ranks))
            }
            try last()
        }
        // step times: the rounds' mean (so that efficiency = total 1-rank time / total N-rank time); every other
        // figure: the rounds' median
        func mean(_ runs: [[String: Double]], ranks: Int) -> Double {
            runs.map { seconds($0, ranks: ranks) }.reduce(0, +) / Double(runs.count)
        }
        func median(_ runs: [[String: Double]]) -> [String: Double] {
            var out: [String: Double] = [:]
            for k in Set(runs.flatMap(\.keys)) {
                let v = runs.compactMap { $0[k] }.sorted()
                out[k] = (v[(v.count - 1) / 2] + v[v.count / 2]) / 2
            }
            return out
        }
        let many = median(manys)
        let (t1, tN) = (mean(ones, ranks: 1), mean(manys, ranks: ranks))
        let batch = ones[0]["batch_size"] ?? 1
        let (i1, iN) = (batch / t1, Double(ranks) * batch / tN)
        print("images_per_s_1=\(fmt(i1))")
        print("images_per_s_\(ranks)=\(fmt(iN))")
        print("seconds_per_iter_1=\(fmt(t1)) seconds_per_iter_\(ranks)=\(fmt(tN))")
        print("allreduce_fraction=\(fmt(many["allreduce_fraction"] ?? .nan))")
        // what Scripts/scaling-model.py --validate needs besides the step times: the phases' sizes and readiness windows
        for key in [
            "bytes_per_rank_per_step", "dense_bytes_per_rank_per_step", "comm_exposed_s", "comm_exposed_d_s",
            "comm_exposed_g_s", "comm_total_s", "comm_cpu_s", "peak_rss_mib",
            "params_g", "params_d", "buckets_g", "buckets_d", "ready_d_window_s", "ready_g_window_s",
            "d_completion_window_s", "g_completion_window_s", "g_ahead_window_s", "overlap",
        ] {
            print("\(key)=\(many[key].map { key.hasSuffix("_step") || key.hasPrefix("params") || key.hasPrefix("buckets") ? String(Int($0)) : fmt($0) } ?? "nan")")
        }
        if rounds > 1 {
            // each pair's efficiency, in the order the pairs ran
            let pairs = zip(ones, manys).map { seconds($0, ranks: 1) / seconds($1, ranks: ranks) }
            print("rounds=\(rounds) scaling_efficiency_rounds=\(pairs.map(fmt).joined(separator: ","))")
        }
        if concurrentBaseline {
            let tC = concurrents.reduce(0, +) / Double(rounds)
            print("seconds_per_iter_concurrent=\(fmt(tC))")
            if rounds > 1 {
                let pairs = zip(concurrents, manys).map { $0 / seconds($1, ranks: ranks) }
                print("distribution_efficiency_rounds=\(pairs.map(fmt).joined(separator: ","))")
            }
            print("distribution_efficiency=\(fmt(tC / tN))")
        }
        print("scaling_efficiency=\(fmt(t1 / tN))")  // = images_per_s_N / (N · images_per_s_1)
    }

    /// Runs the commands at once and parses each one's key=value output lines, in order.
    static func launchTogether(_ commands: [[String]]) throws -> [[String: Double]] {
        var started: [(process: Process, pipe: Pipe)] = []
        do {
            for c in commands { started.append(try start(c)) }
            return try zip(commands, started).map { try finish($0, $1.process, $1.pipe) }
        } catch {
            for s in started where s.process.isRunning { s.process.terminate() }  // none left behind
            throw error
        }
    }

    /// Runs a command and parses its key=value output lines.
    static func launch(_ args: [String]) throws -> [String: Double] {
        let (p, pipe) = try start(args)
        return try finish(args, p, pipe)
    }

    private static func start(_ args: [String]) throws -> (process: Process, pipe: Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        return (p, pipe)
    }

    /// Waits for a started command; its output (a few key=value lines) fits in the pipe meanwhile.
    private static func finish(_ args: [String], _ p: Process, _ pipe: Pipe) throws -> [String: Double] {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TrainingError.io(path: args[0], reason: "\(args.joined(separator: " ")) failed with status \(p.terminationStatus)")
        }
        var out: [String: Double] = [:]
        for token in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }) {
            let kv = token.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }
}
