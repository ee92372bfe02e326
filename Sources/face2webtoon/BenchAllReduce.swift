import ArgumentParser
import CMPIShim
import Distributed
import Engine
import Foundation

/// `face2webtoon bench allreduce`: the gradient collectives alone, as training calls them, under mpirun. What a
/// bucket of the gradient all-reduce costs on this link, for Scripts/scaling-model.py (bus bandwidth as nccl-tests
/// define it: a ring all-reduce sends 2(N − 1)/N of the buffer per rank).
struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time one gradient bucket's collectives under mpirun (2+ ranks): the all-reduce as training runs it, "
            + "MPI_Allreduce as the MPI library chooses, and reduce-scatter + all-gather; prints key=value lines.")

    @Option(help: "Bucket size in MB (the training default is 25).") var mb = 25.0
    @Option(help: "Timed repeats (after one untimed).") var repeats = 3

    func validate() throws {
        guard mb > 0, mb <= 4096, repeats >= 1 else { throw ValidationError("--mb in (0, 4096], --repeats ≥ 1") }
    }

    func run() throws {
        let comm = try makeCommunicator()
        let n = comm.worldSize
        guard n > 1 else {
            throw ValidationError("bench allreduce needs 2 or more ranks: mpirun -np 2 face2webtoon bench allreduce")
        }
        let count = Int(mb * 1_048_576) / 4
        var buf = [Float](repeating: 1, count: count)
        let counts = (0..<n).map { r in count * (r + 1) / n - count * r / n }
        // per call: seconds, this rank's CPU seconds (every thread, user + system), and the whole machine's busy CPU
        // seconds (/proc/stat: every process and the kernel's interrupt work; where the ranks are emulated hosts on
        // one machine, Scripts/netns-cluster, all that the collective costs it, the links included)
        func timed(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws
            -> (s: Double, cpu: Double, machine: Double)
        {
            try buf.withUnsafeMutableBufferPointer { try body($0) }  // untimed: connections, buffers
            try comm.barrier()
            func clocks() -> (Double, Double, Double) {
                (OpBenchmarks.now(), OpBenchmarks.processCPUSeconds(), machineBusySeconds())
            }
            let (t0, cpu0, busy0) = clocks()
            for _ in 0..<repeats { try buf.withUnsafeMutableBufferPointer { try body($0) } }
            let (t1, cpu1, busy1) = clocks()
            let k = Double(repeats)
            return ((t1 - t0) / k, (cpu1 - cpu0) / k, (busy1 - busy0) / k)
        }
        let ar = try timed { try comm.allReduceSum($0) }
        // the MPI library's own algorithm choice (the shim splits large buckets otherwise, docs/distributed.md §8.7)
        let previous = cmpi_set_split_allreduce_min(Int64.max)
        let native = try timed { try comm.allReduceSum($0) }
        _ = cmpi_set_split_allreduce_min(previous)
        let rsag = try timed {
            try comm.reduceScatterSum($0, counts: counts)
            try comm.allGather(inPlace: $0, counts: counts)
        }
        guard comm.rank == 0 else { return try comm.finalize() }
        // bus bandwidth: what each rank's link carries per second in a ring (2(N − 1)/N of the buffer each way)
        let wire = 2 * Double(n - 1) / Double(n) * Double(4 * count) * 8 / 1e6
        print("world_size=\(n) bucket_mb=\(fmt(mb))")
        // rank 0's CPU per call: on hosts that share cores (Scripts/netns-cluster) it is taken from the compute
        print("allreduce_s=\(fmt(ar.s)) allreduce_busbw_mbit_s=\(fmt(wire / ar.s)) allreduce_cpu_s=\(fmt(ar.cpu))"
            + " allreduce_machine_cpu_s=\(fmt(ar.machine))")
        print("mpi_allreduce_s=\(fmt(native.s)) mpi_allreduce_busbw_mbit_s=\(fmt(wire / native.s))"
            + " mpi_allreduce_cpu_s=\(fmt(native.cpu))")
        print("reduce_scatter_allgather_s=\(fmt(rsag.s)) reduce_scatter_allgather_busbw_mbit_s=\(fmt(wire / rsag.s))"
            + " reduce_scatter_allgather_cpu_s=\(fmt(rsag.cpu))")
        try comm.finalize()
    }
}

/// Busy CPU seconds of the whole machine so far: /proc/stat's first line, user, nice, system, irq and softirq (not
/// idle, iowait or steal; guest time is inside user), in clock ticks; NaN where /proc/stat cannot be read.
func machineBusySeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ")
    else { return .nan }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 7 else { return .nan }
    // user nice system idle iowait irq softirq steal …: steal is time the hypervisor gave elsewhere, not ours
    let busy = [0, 1, 2, 5, 6].map { ticks[$0] }.reduce(0, +)
    return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
}
