import ADA
import Checkpoint
import Distributed
import Engine
import Foundation
import UGATIT

/// What the trainer stores in a checkpoint and how it reads it back, over the sharded store (`Checkpoints`,
/// docs/checkpoint-format.md): every parameter and buffer under its official UGATIT-pytorch key
/// (`genA2B.DownBlock.1.weight`, `disGA.model.1.weight_u`, ...), both Adam states (`optim.G.exp_avg.<key>`,
/// `optim.G.exp_avg_sq.<key>`, `optim.G.steps` as int64, likewise `optim.D`), and in the manifest the configuration,
/// step, images seen and a state object: ADA strengths and accumulators and the data-order position of every group.
/// Random streams need no saving: every draw derives from (seed, step, sample index).
public enum TrainingCheckpoint {
    public struct State {
        public var step: Int
        public var imagesSeen: Int
        /// World size of the run that saved it (1 for a new or imported model).
        public var worldSizeAtSave = 1
        public var ada: ADAState?
        /// Samples consumed so far from each group slot's epoch stream (the data-order position).
        public var dataCursors: [Int] = []
        /// Seconds of training so far, over every run that led to this step (KID evaluations excluded), so that
        /// quality-against-time curves of stopped and continued runs are true.
        public var elapsedSeconds: Double = 0
        /// Global batch (images per domain per step) of the run that saved it; nil in older checkpoints.
        public var globalBatchAtSave: Int?
        public init(step: Int, imagesSeen: Int) {
            self.step = step
            self.imagesSeen = imagesSeen
        }
    }

    /// Every tensor of the checkpoint, as `Checkpoints.save` takes them (collective when the optimizer is sharded).
    ///
    /// Sharded Adam moments (`train --shard-optimizer`) are stored whole, under the same names, so that any world size
    /// can resume them: each moment tensor is gathered (MPI_Gatherv of every rank's owned elements) at the rank the
    /// save plan gives it to, which alone holds it whole; the others pass its name and shape. One tensor at a time,
    /// so a rank holds at most its share of the plan in whole moments, plus one staging buffer.
    /// - Throws: `MPIError` if a gather fails.
    static func tensors(_ model: UGATITModel, _ step: UGATITStep?, comm: Communicator) throws -> [CheckpointTensor] {
        var out = model.namedTensors.map { CheckpointTensor($0.name, $0.value) }
        guard let step else { return out }
        let optimizers = [("G", step.gOptimizer), ("D", step.dOptimizer)]
        // the names and byte sizes first: the writer of each tensor follows from them, as the save computes it
        var names = out.map(\.name)
        var bytes = out.map(\.byteCount)
        for (tag, opt) in optimizers {
            for p in opt.parameters {
                for kind in ["exp_avg", "exp_avg_sq"] {
                    names.append("optim.\(tag).\(kind).\(p.name)")
                    bytes.append(4 * p.value.count)
                }
            }
            names.append("optim.\(tag).steps")
            bytes.append(8 * opt.steps.count)
        }
        let plan = ShardPlan(names: names, byteCounts: bytes, worldSize: comm.worldSize)
        var staging: [Float] = []
        for (tag, opt) in optimizers {
            for (i, p) in opt.parameters.enumerated() {
                for (kind, moments) in [("exp_avg", opt.m), ("exp_avg_sq", opt.v)] {
                    let name = "optim.\(tag).\(kind).\(p.name)"
                    guard !opt.keepsWhole(i) else {
                        out.append(CheckpointTensor(name, moments[i]))
                        continue
                    }
                    let writer = plan.rank[out.count]
                    let ranges = (0..<comm.worldSize).map { opt.owned(i, rank: $0) }
                    let counts = ranges.map { $0.reduce(0) { $0 + $1.count } }
                    if comm.rank == writer && staging.count < p.value.count {
                        staging = [Float](repeating: 0, count: p.value.count)
                    }
                    try staging.withUnsafeMutableBufferPointer { st in
                        try comm.gather(
                            UnsafeBufferPointer(start: moments[i].data, count: counts[comm.rank]),
                            into: comm.rank == writer ? st : nil, counts: counts, root: writer)
                    }
                    guard comm.rank == writer else {
                        out.append(CheckpointTensor(elsewhere: name, shape: p.value.shape))
                        continue
                    }
                    let whole = Tensor(zeros: p.value.shape)
                    staging.withUnsafeBufferPointer { st in
                        var at = 0
                        for r in ranges.joined() {
                            (whole.data + r.lowerBound).update(from: st.baseAddress! + at, count: r.count)
                            at += r.count
                        }
                    }
                    out.append(CheckpointTensor(name, whole))
                }
            }
            out.append(CheckpointTensor("optim.\(tag).steps", int64: opt.steps.map(Int64.init)))
        }
        precondition(out.map(\.name) == names, "checkpoint tensor list out of step with its plan")
        return out
    }

    /// Saves step `state.step` under `root` (collective: every rank calls it). See `Checkpoints.save`.
    /// - Throws: `CheckpointError.saveFailed` (the same rank-to-error map on every rank; the previous checkpoint stays current).
    @discardableResult
    public static func save(
        root: String, config: TrainConfig, model: UGATITModel, step: UGATITStep?, state: State,
        comm: Communicator = SingleRankCommunicator(), options: SaveOptions = SaveOptions()
    ) throws -> SaveResult {
        var st: [String: JSONValue] = [
            "data_cursors": .array(state.dataCursors.map { .int(Int64($0)) }),
            "elapsed_seconds": .double(state.elapsedSeconds),
        ]
        if let b = state.globalBatchAtSave { st["global_batch"] = .int(Int64(b)) }
        if let ada = state.ada {
            // a strength that cannot be stored must stop the save, not vanish: a resume would fall back to the configured p
            guard ada.p.allSatisfy(\.isFinite), ada.signSum.allSatisfy(\.isFinite), ada.count.allSatisfy(\.isFinite),
                ada.lastRt.allSatisfy(\.isFinite),
                let json = try? JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(ada))
            else {
                throw TrainingError.nonFinite(
                    "step \(state.step): the ADA state \(ada) is not finite; not saved, the previous checkpoint stays current"
                )
            }
            st["ada"] = json
        }
        let fields = ManifestFields(
            programVersion: Version.string, config: config.json(), imagesSeen: state.imagesSeen, state: .object(st))
        return try Checkpoints.save(
            root: root, step: state.step, tensors: try tensors(model, step, comm: comm), manifestFields: fields,
            comm: comm, options: options)
    }

    /// The configuration and state of the checkpoint at `path` (a root, a step directory or a merged file).
    public static func peek(path: String) throws -> (TrainConfig, State) {
        let r = try Checkpoints.open(path)
        return (try config(r), try state(r))
    }

    public static func config(_ r: CheckpointReader) throws -> TrainConfig {
        guard let c = try? JSONDecoder().decode(TrainConfig.self, from: Data(r.manifest.config.utf8)) else {
            throw CheckpointError.manifestCorrupt(
                path: r.path, reason: "the configuration is not a face2webtoon training configuration")
        }
        return c
    }

    static func state(_ r: CheckpointReader) throws -> State {
        let m = r.manifest
        var st = State(step: m.step, imagesSeen: m.imagesSeen)
        st.worldSizeAtSave = m.worldSize
        if case .object(let o) = m.state {
            if let ada = o["ada"] {
                guard let data = try? JSONEncoder().encode(ada),
                    let decoded = try? JSONDecoder().decode(ADAState.self, from: data),
                    decoded.p.count == 2, decoded.p.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 })
                else {
                    throw CheckpointError.manifestCorrupt(
                        path: r.path,
                        reason: "the ADA state "
                            + String(decoding: (try? JSONEncoder().encode(ada)) ?? Data(), as: UTF8.self).prefix(300)
                            + " is not a pair of strengths p in [0, 1] "
                            + "with its statistics; a resume would silently restart ADA from the configured p")
                }
                st.ada = decoded
            }
            if let e = o["elapsed_seconds"]?.doubleValue { st.elapsedSeconds = e }
            if let b = o["global_batch"]?.doubleValue { st.globalBatchAtSave = Int(b) }
            if case .array(let c)? = o["data_cursors"] {
                st.dataCursors = c.compactMap { if case .int(let v) = $0 { return Int(v) } else { return nil } }
            }
        }
        return st
    }

    /// Loads parameters, buffers and (if `step` is given) Adam state into a model built from the same configuration.
    /// - Throws: `CheckpointError` naming the file and the first missing or mis-shaped tensor, or a checksum failure.
    @discardableResult
    public static func load(_ r: CheckpointReader, into model: UGATITModel, step: UGATITStep?) throws -> State {
        for t in model.namedTensors { try r.read(t.name, into: t.value) }
        if let step {
            for (tag, opt) in [("G", step.gOptimizer), ("D", step.dOptimizer)] {
                var whole: Tensor?  // reused for a sharded optimizer: its moments are stored whole
                for (i, p) in opt.parameters.enumerated() {
                    for (kind, moments) in [("exp_avg", opt.m), ("exp_avg_sq", opt.v)] {
                        let name = "optim.\(tag).\(kind).\(p.name)"
                        guard !opt.keepsWhole(i) else {
                            try r.read(name, into: moments[i])
                            continue
                        }
                        if whole?.shape != p.value.shape { whole = Tensor(zeros: p.value.shape) }
                        try r.read(name, into: whole!)
                        var at = 0
                        for k in opt.owned[i] {
                            (moments[i].data + at).update(from: whole!.data + k.lowerBound, count: k.count)
                            at += k.count
                        }
                    }
                }
                let counts = try r.int64s("optim.\(tag).steps")
                guard counts.count == opt.steps.count else {
                    throw CheckpointError.tensorMismatch(
                        name: "optim.\(tag).steps", expected: "\(opt.steps.count) counts", found: "\(counts.count)")
                }
                opt.steps = counts.map(Int.init)
            }
        }
        return try state(r)
    }

    public static func load(path: String, into model: UGATITModel, step: UGATITStep?) throws -> State {
        try load(try Checkpoints.open(path), into: model, step: step)
    }
}
