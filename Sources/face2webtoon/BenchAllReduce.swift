import ArgumentParser
import Distributed
import Engine
import Foundation

/// `face2webtoon bench allreduce`: the gradient collectives alone, as training calls them, under mpirun. What a
/// bucket of the gradient all-reduce costs on this link, for Scripts/scaling-model.py (bus bandwidth as nccl-tests
/// define it: a ring all-reduce sends 2(N − 1)/N of the buffer per rank).
struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time float32 all-reduce, and reduce-scatter + all-gather, of one bucket; prints key=value lines.")

    @Option(help: "Bucket size in MB (the training default is 25).") var mb = 25.0
    @Option(help: "Timed repeats (after one untimed).") var repeats = 3

    func validate() throws {
        guard mb > 0, mb <= 4096, repeats >= 1 else { throw ValidationError("--mb in (0, 4096], --repeats ≥ 1") }
    }

    func run() throws {
        let comm = try makeCommunicator()
        let n = comm.worldSize
        let count = Int(mb * 1_048_576) / 4
        var buf = [Float](repeating: 1, count: count)
        let counts = (0..<n).map { r in count * (r + 1) / n - count * r / n }
        func timed(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> Double {
            try buf.withUnsafeMutableBufferPointer { try body($0) }  // untimed: connections, buffers
            try comm.barrier()
            let t0 = OpBenchmarks.now()
            for _ in 0..<repeats { try buf.withUnsafeMutableBufferPointer { try body($0) } }
            return (OpBenchmarks.now() - t0) / Double(repeats)
        }
        let ar = try timed { try comm.allReduceSum($0) }
        let rsag = try timed {
            try comm.reduceScatterSum($0, counts: counts)
            try comm.allGather(inPlace: $0, counts: counts)
        }
        guard comm.rank == 0 else { return try comm.finalize() }
        // bus bandwidth: what each rank's link carries per second in a ring (2(N − 1)/N of the buffer each way)
        let wire = 2 * Double(n - 1) / Double(n) * Double(4 * count) * 8 / 1e6
        print("world_size=\(n) bucket_mb=\(fmt(mb))")
        print("allreduce_s=\(fmt(ar)) allreduce_busbw_mbit_s=\(fmt(n > 1 ? wire / ar : .nan))")
        print("reduce_scatter_allgather_s=\(fmt(rsag)) reduce_scatter_allgather_busbw_mbit_s=\(fmt(n > 1 ? wire / rsag : .nan))")
        try comm.finalize()
    }
}
